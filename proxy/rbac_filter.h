// The RBAC HTTP filter (envoy.filters.http.rbac) on weft-proxy's inbound
// chains: the filter's config is compiled once, when ProxyConfig accepts a
// Listener, into a tree of matchers; the data path asks it for a decision
// per request (the peer's verified SPIFFE ID, method, path, port, headers).
// weftd emits two of these per chain, DENY then ALLOW (docs/policies.md);
// the semantics are Envoy's, as traced by tests/testing/xds_simulator.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "proxy/route_table.h"

namespace weft::proxy {

// What RBAC looks at in one request.
struct RbacRequest {
  RouteRequest http;           // host, method, path (with the query), headers
  std::string_view principal;  // the peer certificate's URI SAN; "" without mTLS
  uint32_t destination_port = 0;
};

struct RbacDecision {
  bool allowed = true;
  // The DENY policy that matched, or for ALLOW the one that let it through;
  // "" when an ALLOW filter found none.
  std::string policy;
};

class RbacFilterConfig;
using RbacFilterConfigConstSharedPtr = std::shared_ptr<const RbacFilterConfig>;

class RbacFilterConfig {
 public:
  enum class Action { kAllow, kDeny, kNone };  // kNone: no rules (or LOG): every request passes

  // Unsupported permission or principal kinds are errors naming their place
  // (`rules.policies["ns/p/rules[0]"].permissions[1].and_rules.rules[0]: ...`)
  // so that the update is NACKed rather than half enforced.
  static absl::StatusOr<RbacFilterConfigConstSharedPtr> Create(
      const envoy::extensions::filters::http::rbac::v3::RBAC& proto, std::string filter_name);

  RbacDecision Evaluate(const RbacRequest& request) const;

  const std::string& name() const { return name_; }
  Action action() const { return action_; }

  // A compiled Permission or Principal (one node type serves both trees).
  struct Matcher {
    enum class Kind {
      kAny,
      kAnd,
      kOr,
      kNot,
      kHeader,
      kUrlPath,
      kPort,
      kPortRange,
      kAuthenticated
    } kind = Kind::kAny;
    std::vector<Matcher> children;  // kAnd, kOr; kNot has one
    HeaderMatch header;
    std::optional<StringMatch> string;      // kUrlPath; kAuthenticated (nullopt: any authenticated peer)
    uint32_t port_start = 0, port_end = 0;  // kPort: [start, start]; kPortRange: [start, end)
    bool Matches(const RbacRequest& request, std::string_view path_without_query) const;
  };
  struct Policy {
    std::string name;
    std::vector<Matcher> permissions;  // any
    std::vector<Matcher> principals;   // any
  };

 private:
  std::string name_;
  Action action_ = Action::kNone;
  std::vector<Policy> policies_;  // sorted by name: the reported policy is deterministic
};

}  // namespace weft::proxy
