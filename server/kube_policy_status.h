// Turns the policy validator's per-object results (policy::PolicySet
// statuses) into the Kubernetes statuses Weft writes (DESIGN.md §4,
// docs/kubernetes.md): Accepted for the weft.io policies, and for HTTPRoutes
// one Gateway API RouteParentStatus per Service parentRef with the
// conditions Accepted and ResolvedRefs. weftd hands the result to
// KubeRegistry::ReportVerdicts, the one writer. Pure.
#pragma once

#include <map>
#include <string>

#include "discovery/kube_status_writer.h"
#include "discovery/mesh_snapshot.h"
#include "policy/policy_set.h"

namespace weft::server {

// Keyed like MeshSnapshot::policies ("Kind/namespace/name"). Conditions
// carry observed_generation 0: the registry sets the generation it saw.
std::map<std::string, discovery::KubeObjectVerdict> KubePolicyVerdicts(const discovery::MeshSnapshot& mesh,
                                                                       const policy::PolicySet& policies);

}  // namespace weft::server
