// The validated policies of one MeshSnapshot, built once per snapshot by
// ValidatePolicies() and shared (immutable) by every Compile() for that
// snapshot. Besides the typed policies it carries the per-object validation
// result (Accepted / Invalid with field-path errors) that the admin API
// shows and that Kubernetes status conditions are written from, and the
// outbound resources that come out identical for every sidecar.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "discovery/mesh_snapshot.h"
#include "policy/compiler_options.h"
#include "policy/endpoints.h"
#include "policy/policy_types.h"
#include "policy/proxy_resources.h"

namespace weft::policy {

// The outcome of validating one policy object.
struct PolicyStatus {
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string source;  // SourceRef string
  // Invalid objects are rejected alone: nothing of them is compiled.
  bool accepted = true;
  std::vector<discovery::ConfigError> errors;
  // Accepted, but something it refers to does not exist (yet): a missing
  // backend Service or port, a target that matches nothing. Gateway API's
  // ResolvedRefs=False.
  std::vector<discovery::ConfigError> warnings;
};

// Resources that do not depend on the proxy (outbound Clusters and
// ClusterLoadAssignments of every service port as a sidecar sees them),
// built and serialized once per PolicySet; Compile() copies the shared
// pointers.
struct SharedResources {
  struct ClusterPair {
    Resource cluster;
    Resource endpoints;
  };
  using Pairs = std::map<std::string, std::shared_ptr<const ClusterPair>>;
  // By cluster name: `recent` (the pairs rebuilt by endpoint changes since
  // `base` was last merged) over `base`. An endpoint change rebuilds the
  // pairs of a few services and copies `recent`, a few entries, while the
  // whole table stays shared with the previous PolicySet; `recent` is merged
  // into a new `base` once it holds a sixteenth of the services.
  std::shared_ptr<const Pairs> base;
  Pairs recent;

  // The pair of `cluster_name`; null when there is none.
  const ClusterPair* Find(const std::string& cluster_name) const;
};

struct PolicySet {
  uint64_t snapshot_version = 0;
  std::string root_namespace = "weft-system";
  // Accepted policies only, sorted by (namespace, name).
  std::vector<HTTPRoute> http_routes;
  std::vector<TrafficPolicy> traffic_policies;
  std::vector<AuthorizationPolicy> authorization_policies;
  std::vector<RateLimitPolicy> rate_limit_policies;
  std::vector<MTLSPolicy> mtls_policies;
  // Every policy document of the snapshot, keyed "Kind/namespace/name".
  std::map<std::string, PolicyStatus> statuses;
  // Null when built without precompile_shared (tests), or when empty.
  std::shared_ptr<const SharedResources> shared;
  // Backend lookups over the same snapshot (null: the compiler scans).
  std::shared_ptr<const EndpointIndex> endpoint_index;
};

using PolicySetConstSharedPtr = std::shared_ptr<const PolicySet>;

// Validates every PolicyDocument of `mesh` (HTTPRoute and the weft.io
// kinds); never fails as a whole: an invalid object is left out and its
// errors are recorded in `statuses`. Pure and deterministic.
PolicySetConstSharedPtr ValidatePolicies(const discovery::MeshSnapshot& mesh,
                                         const CompilerOptions& options = {});

// Validates one document alone (what ValidatePolicies does per object).
// `routes` etc. receive the typed policy when it is valid.
PolicyStatus ValidatePolicyDocument(const discovery::PolicyDocument& doc, PolicySet& into,
                                    const CompilerOptions& options = {});

// ---- Lookups used by the compiler (the most specific policy wins) ----

// The TrafficPolicy for a Service: one targeting it, else one without
// targets in its namespace, else one without targets in the root namespace.
// Ties go to the first by name. Null when none applies.
const TrafficPolicy* TrafficPolicyForService(const PolicySet& policies, const discovery::Service& service);
// The TrafficPolicy targeting an HTTPRoute, if any.
const TrafficPolicy* TrafficPolicyForRoute(const PolicySet& policies, const HTTPRoute& route);

// The MTLS mode of a workload with these labels in this namespace: a
// policy with a matching selector in the namespace, else the namespace's,
// else the root namespace's, else PERMISSIVE.
MtlsMode MtlsModeFor(const PolicySet& policies, const std::string& ns,
                     const std::map<std::string, std::string>& labels);

// AuthorizationPolicies that select a workload (by selector, by a targeted
// Service whose selector matches the labels, or namespace / mesh-wide).
std::vector<const AuthorizationPolicy*> AuthorizationPoliciesFor(
    const PolicySet& policies, const discovery::MeshSnapshot& mesh, const std::string& ns,
    const std::map<std::string, std::string>& labels);

// The RateLimitPolicy of a workload: one targeting a Service that selects
// it, else the namespace's, else the root namespace's. Null when none.
const RateLimitPolicy* RateLimitPolicyFor(const PolicySet& policies, const discovery::MeshSnapshot& mesh,
                                          const std::string& ns,
                                          const std::map<std::string, std::string>& labels);

// Per-route rate limits (a RateLimitPolicy whose targetRefs name an
// HTTPRoute in its namespace). The caller's sidecar tags the route's
// requests with kRouteTagHeader = "<ns>/<route>"; the sidecars of the
// workloads behind the route's backends give each tag its own token bucket,
// in addition to the workload's own limit (docs/policies.md).
inline constexpr char kRouteTagHeader[] = "x-weft-route";
// The RateLimitPolicy targeting `route`, if any (the first by name).
const RateLimitPolicy* RateLimitPolicyForRoute(const PolicySet& policies, const HTTPRoute& route);
struct RouteRateLimit {
  const HTTPRoute* route;
  const RateLimitPolicy* policy;
};
// The per-route limits a workload enforces: routes with a RateLimitPolicy
// that send to a Service selecting the workload. Sorted by route.
std::vector<RouteRateLimit> RouteRateLimitsFor(const PolicySet& policies, const discovery::MeshSnapshot& mesh,
                                               const std::string& ns,
                                               const std::map<std::string, std::string>& labels);

// True when every label of `selector` is in `labels` (an empty selector
// matches everything).
bool LabelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels);

}  // namespace weft::policy
