// The sidecar half of the compiler (called by Compile() for
// ProxyIdentity::Kind::kSidecar): the outbound listener on 127.0.0.1:15001
// with the RouteConfiguration "outbound" (a virtual host per reachable
// service port), the outbound clusters and endpoints, and the inbound
// listener on 0.0.0.0:15006 whose filter chains (mTLS / plaintext by
// MTLSPolicy) carry the RBAC and local rate-limit filters and route to the
// local app's inbound|PORT|| clusters. docs/policies.md describes the shape.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "discovery/mesh_snapshot.h"
#include "policy/compiler_options.h"
#include "policy/policy_set.h"
#include "policy/proxy_resources.h"

namespace weft::policy {

inline constexpr char kOutboundListenerName[] = "outbound";
inline constexpr char kOutboundRouteName[] = "outbound";
inline constexpr char kInboundListenerName[] = "inbound";
// The inbound HTTP filter that enforces per-route rate limits (a
// local_ratelimit instance whose buckets are all per route).
inline constexpr char kRouteRateLimitFilterName[] = "envoy.filters.http.local_ratelimit.route";
inline constexpr char kDependenciesAnnotation[] = "weft.io/dependencies";

// A workload this proxy fronts (a Pod or a Workload with the proxy's IP,
// namespace and service account) and the ports its Services send it.
struct LocalWorkload {
  std::string namespace_;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string source;
  std::map<uint32_t, std::vector<std::string>> ports;  // port -> sources (the Services)
};

std::vector<LocalWorkload> LocalWorkloads(const discovery::MeshSnapshot& mesh, const ProxyIdentity& proxy);

// "inbound|PORT||"
std::string InboundClusterName(uint32_t port);

void CompileSidecar(const discovery::MeshSnapshot& mesh, const PolicySet& policies, const ProxyIdentity& proxy,
                    const CompilerOptions& options, ProxyResources& out);

}  // namespace weft::policy
