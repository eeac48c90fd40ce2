// Builds the outbound Clusters and ClusterLoadAssignments of service ports
// (Istio naming: outbound|PORT||HOST), with the destination's TrafficPolicy
// (load balancer, circuit breakers, outlier detection) and, for sidecars,
// upstream mTLS whose certificates come by SDS and whose peer check is the
// destination's SPIFFE IDs. Used by Compile() and, once per snapshot, by
// ValidatePolicies() to precompile what every sidecar shares.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "discovery/mesh_snapshot.h"
#include "policy/compiler_options.h"
#include "policy/policy_set.h"
#include "policy/proxy_resources.h"

namespace weft::policy {

// SDS secret names that weft-proxy (and Envoy with an SDS server) resolve:
// the workload's own certificate and the mesh trust bundle.
inline constexpr char kWorkloadCertSecret[] = "default";
inline constexpr char kRootCaSecret[] = "ROOTCA";

enum class ClusterFlavor { kProxyless, kSidecar };

// spiffe://<trust domain>/ns/<ns>/sa/<sa> of every workload behind the
// Service (Workloads and Pods its selector matches, Pods its EndpointSlices
// name), sorted.
std::vector<std::string> ServiceIdentities(const discovery::MeshSnapshot& mesh, const discovery::Service& service,
                                           const CompilerOptions& options, const EndpointIndex* index = nullptr);

// The mTLS mode of the Service's workloads, as the destination's
// MTLSPolicy says (judged on the Service's selector labels).
MtlsMode ServiceMtlsMode(const PolicySet& policies, const discovery::Service& service);

// Adds the Cluster and the ClusterLoadAssignment of one service port to
// `out`; a sidecar's come from policies.shared when it has them.
void AddOutboundCluster(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                        const discovery::Service& service, const discovery::ServicePort& port,
                        const CompilerOptions& options, ClusterFlavor flavor, ProxyResources& out);

// Fills set.shared with the sidecar Clusters and ClusterLoadAssignments of
// every service port of `mesh`.
void PrecompileShared(const discovery::MeshSnapshot& mesh, PolicySet& set, const CompilerOptions& options);
// The same for an endpoint-only change: set.shared becomes `previous` with
// the ports of `services` (ObjectKeys) built again.
void UpdateShared(const discovery::MeshSnapshot& mesh, PolicySet& set, const CompilerOptions& options,
                  const SharedResources& previous, const std::set<std::string>& services);

}  // namespace weft::policy
