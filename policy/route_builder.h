// Turns the HTTPRoutes attached to one Service port (GAMMA: producer routes
// in the Service's namespace apply to every caller; consumer routes in the
// caller's namespace replace them for that caller) and the destination's
// TrafficPolicy into the Envoy routes of a virtual host, in Gateway API
// precedence order. Shared by the sidecar and the proxyless compilers;
// the proxyless flavour keeps to the route fields gRPC's xDS client reads.
#pragma once

#include <string>
#include <vector>

#include "discovery/mesh_snapshot.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "policy/compiler_options.h"
#include "policy/policy_set.h"

namespace weft::policy {

enum class RouteFlavor { kProxyless, kSidecar };

// Name of the fault filter in sidecar HTTP connection managers; routes
// carry their fault injection as its per-route config.
inline constexpr char kFaultFilterName[] = "envoy.filters.http.fault";

// Appends the routes of `service`:`port` as seen by a caller in `caller_ns`
// to `vhost`, and the SourceRef strings of the policies used to `sources`.
void BuildServiceRoutes(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                        const discovery::Service& service, const discovery::ServicePort& port,
                        const std::string& caller_ns, const CompilerOptions& options, RouteFlavor flavor,
                        envoy::config::route::v3::VirtualHost& vhost, std::vector<std::string>& sources);

// The HTTPRoutes that apply to `service`:`port` for a caller in
// `caller_ns`: its consumer routes if it has any, else the producer routes.
std::vector<const HTTPRoute*> RoutesFor(const PolicySet& policies, const discovery::Service& service,
                                        uint32_t port, const std::string& caller_ns);

}  // namespace weft::policy
