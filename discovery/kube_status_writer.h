// Writes status conditions of the weft.io kinds back to Kubernetes through
// the /status subresource, so that `kubectl get trafficpolicy -o yaml` says
// whether Weft accepted an object and, if not, which field is wrong
// (DESIGN.md §4: "An invalid resource ... gets a status condition").
//
// Conditions follow metav1.Condition. Writes are read-modify-write: GET the
// object, merge the given conditions by type into status.conditions (others
// are kept; lastTransitionTime changes only when status does), PUT
// .../status with the object's resourceVersion, retried on 409 Conflict.
// KubeRegistry calls it for objects that fail to decode; the policy
// validator uses the same API for semantic errors. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "discovery/kube_client.h"

namespace weft::discovery {

struct KubeCondition {
  std::string type = "Accepted";
  bool status = true;       // "True" / "False"
  std::string reason;       // CamelCase, e.g. "Accepted", "Invalid"
  std::string message;      // e.g. "spec.rules[2].from[0].principals[0]: not a SPIFFE ID"
  int64_t observed_generation = 0;
};

class KubeStatusWriter {
 public:
  KubeStatusWriter(KubeClient& client, common::Clock& clock);

  // `kind` is a weft.io kind ("TrafficPolicy", ...). NotFound when the
  // object is gone, InvalidArgument for a kind without a status subresource.
  // A write that would change nothing is skipped (no request but the GET).
  absl::Status WriteStatus(const std::string& kind, const std::string& ns, const std::string& name,
                           const std::vector<KubeCondition>& conditions);

 private:
  KubeClient& client_;
  common::Clock& clock_;
};

}  // namespace weft::discovery
