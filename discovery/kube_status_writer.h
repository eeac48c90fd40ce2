// Writes what Weft concluded about an object back to Kubernetes through the
// /status subresource, so that `kubectl get trafficpolicy -o yaml` says
// whether Weft accepted an object and, if not, which field is wrong
// (DESIGN.md §4: "An invalid resource ... gets a status condition"), and
// `kubectl get httproute -o yaml` shows Weft's Gateway API route status.
//
// Two shapes: the weft.io kinds carry metav1.Conditions in
// status.conditions (merged by type; other types are kept); an HTTPRoute
// carries Gateway API RouteParentStatus entries in status.parents, of which
// Weft owns those with controllerName kWeftControllerName (entries of other
// controllers are kept). lastTransitionTime moves only when a condition's
// status does. Writes are read-modify-write: GET, ApplyKubeVerdict(), PUT
// .../status with the object's resourceVersion, retried on 409 Conflict; a
// write that would change nothing is skipped.
//
// KubeRegistry is the only caller (one owner of these statuses); the verdicts
// come from decoding and from the policy validator. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "discovery/kube_client.h"
#include "discovery/kube_resource.h"

namespace weft::discovery {

// status.parents[].controllerName of the entries Weft writes on HTTPRoutes.
inline constexpr char kWeftControllerName[] = "weft.io/mesh-controller";

struct KubeCondition {
  std::string type = "Accepted";
  bool status = true;   // "True" / "False"
  std::string reason;   // CamelCase, e.g. "Accepted", "Invalid"
  std::string message;  // e.g. "spec.rules[2].from[0].principals[0]: not a SPIFFE ID"
  int64_t observed_generation = 0;
};

// One Gateway API RouteParentStatus: a parentRef Weft implements (a Service).
struct KubeRouteParentStatus {
  nlohmann::json parent_ref;              // as written in spec.parentRefs
  std::vector<KubeCondition> conditions;  // Accepted, ResolvedRefs
};

// The status Weft wants an object to carry.
struct KubeObjectVerdict {
  // weft.io kinds: merged into status.conditions.
  std::vector<KubeCondition> conditions;
  // HTTPRoute: Weft's entries of status.parents (replacing Weft's old ones).
  bool route = false;
  std::vector<KubeRouteParentStatus> route_parents;
};

// Merges `verdict` into `object` (a whole object, or {"status": ...}).
// `now` is the lastTransitionTime of conditions whose status changes.
// Returns whether anything changed: false means the object already says
// what the verdict says (no write needed).
bool ApplyKubeVerdict(const KubeObjectVerdict& verdict, std::chrono::system_clock::time_point now,
                      nlohmann::json& object);

class KubeStatusWriter {
 public:
  KubeStatusWriter(KubeClient& client, common::Clock& clock);

  // True when it wrote, false when the object said so already. NotFound
  // when the object is gone, InvalidArgument for a type without a status
  // subresource.
  absl::StatusOr<bool> Write(const KubeResource& resource, const std::string& ns, const std::string& name,
                             const KubeObjectVerdict& verdict);

 private:
  KubeClient& client_;
  common::Clock& clock_;
};

}  // namespace weft::discovery
