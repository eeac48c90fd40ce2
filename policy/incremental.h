// Incremental compilation of endpoint-only changes. When a snapshot differs
// from the one before only in Workloads, Pods and EndpointSlices (scaling,
// rollouts, a workload moving: the most frequent changes in a mesh), the
// validated policies stay as they were and, for every proxy but those
// running at the addresses involved, only the Clusters and
// ClusterLoadAssignments of the Services those objects back can differ.
// These functions find that part and build only it, so that an endpoint
// change costs O(change) instead of a validation and a compile of the whole
// mesh per configuration. Compile() remains the definition: for every change
// the result equals what it would produce (tests/policy/incremental_test.cc).
#pragma once

#include <set>
#include <string>

#include "discovery/mesh_snapshot.h"
#include "policy/compiler_options.h"
#include "policy/endpoints.h"
#include "policy/policy_set.h"
#include "policy/proxy_resources.h"

namespace weft::policy {

struct EndpointImpact {
  // Services (ObjectKey) whose clusters may differ: their endpoints, or the
  // identities their workloads run as (the peer check of upstream mTLS).
  std::set<std::string> services;
  // Every address the changed objects had or have. A sidecar at one of them
  // may serve other local ports, so its whole configuration is compiled.
  std::set<std::string> addresses;
  // How the endpoint index of `before` becomes that of `after`.
  EndpointIndexDelta index_delta;

  // True when `proxy`'s configuration may differ beyond the clusters of
  // `services`.
  bool AffectsWhole(const ProxyIdentity& proxy) const;
};

EndpointImpact ImpactOf(const discovery::MeshSnapshot& before, const discovery::MeshSnapshot& after,
                        const discovery::EndpointChange& change);

// `previous` (validated for `before`, the snapshot `impact` was computed
// from) carried over to `after`: the same policies and statuses, the
// endpoint index brought up to `after` (shared when no labels or services
// changed), and the shared sidecar clusters of the impacted services built
// again. O(change), but for copying the tables of shared pointers.
PolicySetConstSharedPtr CarryOverPolicies(const PolicySet& previous, const discovery::MeshSnapshot& after,
                                          const EndpointImpact& impact, const CompilerOptions& options);

// The Clusters and ClusterLoadAssignments of every port of the impacted
// services as Compile() gives them to `proxy` (one that !AffectsWhole).
// Services the proxy does not reach are included too: the caller keeps only
// the names the proxy already holds.
ProxyResources CompileImpactedClusters(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                                       const ProxyIdentity& proxy, const EndpointImpact& impact,
                                       const CompilerOptions& options);

}  // namespace weft::policy
