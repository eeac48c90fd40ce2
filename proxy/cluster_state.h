// What weft-proxy keeps per upstream cluster across workers and across
// configuration updates: the circuit-breaker counters and the outlier
// detector's host state. Looked up by cluster name; each worker caches the
// pointers so the data path takes the registry's lock once per cluster.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "proxy/circuit_breaker.h"
#include "proxy/outlier_detector.h"

namespace weft::proxy {

struct ClusterState {
  explicit ClusterState(common::Clock& clock) : outlier(clock) {}
  CircuitBreaker breaker;
  OutlierDetector outlier;
};
using ClusterStateSharedPtr = std::shared_ptr<ClusterState>;

class ClusterStateRegistry {
 public:
  explicit ClusterStateRegistry(common::Clock& clock) : clock_(clock) {}
  ClusterStateSharedPtr Get(const std::string& cluster) {
    absl::MutexLock lock(&mu_);
    auto& slot = states_[cluster];
    if (!slot) slot = std::make_shared<ClusterState>(clock_);
    return slot;
  }

 private:
  common::Clock& clock_;
  absl::Mutex mu_;
  std::unordered_map<std::string, ClusterStateSharedPtr> states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::proxy
