#include "proxy/upgrade_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/http_codec.h"

namespace weft::proxy {
namespace {

// Both kinds of UpgradeConfig have upgrade_type and enabled (BoolValue,
// default true).
template <typename Config>
void AddType(const Config& c, const std::string& path, std::vector<std::pair<std::string, bool>>& out,
             std::vector<std::string>& errors) {
  std::string type = absl::AsciiStrToLower(c.upgrade_type());
  if (type.empty()) {
    errors.push_back(path + ".upgrade_type: required");
    return;
  }
  if (type == "connect") {
    errors.push_back(path + ".upgrade_type: CONNECT is not supported by weft-proxy");
    return;
  }
  for (const auto& [t, enabled] : out) {
    if (t == type) {
      errors.push_back(path + ".upgrade_type: \"" + c.upgrade_type() + "\" is listed twice");
      return;
    }
  }
  out.emplace_back(std::move(type), !c.has_enabled() || c.enabled().value());
}

// The upgrade_configs of an HCM or a route; `unsupported(c)` names what
// weft-proxy cannot do in one (a field and why), or is empty.
template <typename Configs, typename Unsupported>
absl::Status ReadConfigs(const Configs& configs, const std::string& path, Unsupported unsupported,
                         std::vector<std::pair<std::string, bool>>& out) {
  std::vector<std::string> errors;
  for (int i = 0; i < configs.size(); ++i) {
    const auto& c = configs.Get(i);
    const std::string p = absl::StrCat(path, ".upgrade_configs[", i, "]");
    if (const std::string what = unsupported(c); !what.empty()) {
      errors.push_back(p + what);
      continue;
    }
    AddType(c, p, out, errors);
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UpgradePolicy> UpgradePolicy::FromHcm(
    const envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager& hcm,
    const std::string& path) {
  UpgradePolicy policy;
  absl::Status read = ReadConfigs(
      hcm.upgrade_configs(), path,
      [](const auto& c) {
        return c.filters_size() > 0 ? ".filters: custom upgrade filter chains are not supported by weft-proxy"
                                    : "";
      },
      policy.types_);
  if (!read.ok()) return read;
  return policy;
}

absl::StatusOr<UpgradePolicy> UpgradePolicy::FromRoute(const envoy::config::route::v3::RouteAction& action,
                                                       const std::string& path) {
  UpgradePolicy policy;
  absl::Status read = ReadConfigs(
      action.upgrade_configs(), path,
      [](const auto& c) {
        return c.has_connect_config() ? ".connect_config: CONNECT is not supported by weft-proxy" : "";
      },
      policy.types_);
  if (!read.ok()) return read;
  return policy;
}

std::optional<bool> UpgradePolicy::Find(std::string_view type) const {
  for (const auto& [t, enabled] : types_) {
    if (EqualsIgnoreCase(t, type)) return enabled;
  }
  return std::nullopt;
}

bool UpgradeAllowed(const UpgradePolicy& hcm, const UpgradePolicy* route, std::string_view type) {
  if (route != nullptr) {
    if (std::optional<bool> r = route->Find(type)) return *r;
  }
  return hcm.Find(type).value_or(false);
}

}  // namespace weft::proxy
