// HTTP/1.1 protocol upgrades (WebSocket and the like) as Envoy decides them:
// the upgrade_configs of an HttpConnectionManager and of a route, compiled
// once per configuration, and the rule that combines them for a request's
// Upgrade type. ProxyConfig (HCMs) and RouteTable (routes) build them; the
// data path asks UpgradeAllowed() when a request asks for an upgrade.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace weft::proxy {

// Upgrade types (lower case, as Envoy matches them case-insensitively) and
// whether each is enabled.
class UpgradePolicy {
 public:
  // An HCM's upgrade_configs; custom upgrade filter chains (`filters`) are
  // refused, naming their place under `path`.
  static absl::StatusOr<UpgradePolicy> FromHcm(
      const envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager& hcm,
      const std::string& path);
  // A RouteAction's upgrade_configs; `connect_config` (CONNECT) is refused.
  static absl::StatusOr<UpgradePolicy> FromRoute(const envoy::config::route::v3::RouteAction& action,
                                                 const std::string& path);

  // The setting for `type` (any case), or nullopt when it is not listed.
  std::optional<bool> Find(std::string_view type) const;
  bool empty() const { return types_.empty(); }

 private:
  std::vector<std::pair<std::string, bool>> types_;
};

// Envoy's rule: a route that lists the type decides (enabled or not);
// otherwise the HCM's entry does; a type neither lists is refused (403).
bool UpgradeAllowed(const UpgradePolicy& hcm, const UpgradePolicy* route, std::string_view type);

}  // namespace weft::proxy
