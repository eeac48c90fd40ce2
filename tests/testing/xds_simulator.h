// Simulation of compiled configuration without a proxy running: a request
// (source identity, host, port, method, path, headers) is traced through a
// proxy's Listeners and RouteConfigurations the way Envoy would (virtual
// host by domain, first matching route, weighted clusters), and through the
// inbound side (filter chain by port and TLS, RBAC DENY then ALLOW, local
// rate limit). Reusable by the policy, xDS and proxy tests.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "envoy/config/route/v3/route.pb.h"
#include "policy/proxy_resources.h"

namespace weft::testing {

struct SimRequest {
  std::string host;  // Host header, "orders.shop:8080"
  std::string method = "GET";
  std::string path = "/";  // may carry ?query
  std::map<std::string, std::string> headers;  // lower-case names
};

struct RouteDecision {
  std::string virtual_host;  // "" when no virtual host took the Host (pass-through)
  std::string route;         // name of the matching route; "" when none (404)
  std::vector<std::pair<std::string, uint32_t>> clusters;  // cluster, weight
  int status = 0;            // direct response or redirect status; 404 when no route
  envoy::config::route::v3::Route matched;  // the whole matching route
  std::optional<int64_t> timeout_ms;
  bool has_fault = false;
};

// Traces `request` through one RouteConfiguration.
RouteDecision TraceRoutes(const envoy::config::route::v3::RouteConfiguration& routes, const SimRequest& request);

// A sidecar's outbound side: the "outbound" listener's RDS route config.
RouteDecision TraceOutbound(const policy::ProxyResources& resources, const SimRequest& request);

// A proxyless client: the API listener named `listener` ("HOST:PORT").
RouteDecision TraceProxyless(const policy::ProxyResources& resources, const std::string& listener,
                             const SimRequest& request);

struct SimConnection {
  uint32_t port = 0;           // destination port (the workload's port)
  bool tls = false;            // mTLS from a peer sidecar
  std::string peer_principal;  // the peer certificate's URI SAN ("" = none)
};

struct InboundDecision {
  bool connected = false;     // a filter chain took the connection
  std::string filter_chain;
  int status = 0;             // 200 (forwarded), 403 (RBAC), 429 (rate limited)
  std::string denied_by;      // RBAC filter name and policy
  std::string cluster;        // inbound|PORT|| when forwarded
  std::optional<uint32_t> rate_limit_tokens;  // bucket size when a limit applies
  std::string rate_limited_route;             // the route whose own bucket applied, if any
  std::optional<std::string> retry_after;
};

// `request_number` is the 1-based position of the request in a burst that
// arrives at one instant (the token bucket starts full).
InboundDecision TraceInbound(const policy::ProxyResources& resources, const SimConnection& connection,
                             const SimRequest& request, uint32_t request_number = 1);

}  // namespace weft::testing
