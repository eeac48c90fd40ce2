// Runs the iterations of a loop on a few threads: the caller's and a fixed
// set of workers started once. For fan-outs that are CPU-bound per item and
// independent (weftd hands a new configuration to thousands of xDS streams).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace weft::common {

class ParallelRunner {
 public:
  // `threads` in all, the caller's included; 1 runs everything inline.
  explicit ParallelRunner(size_t threads);
  ~ParallelRunner();
  ParallelRunner(const ParallelRunner&) = delete;
  ParallelRunner& operator=(const ParallelRunner&) = delete;

  // Calls fn(i) for every i in [0, n), in no particular order, and returns
  // when all calls have returned. One Run at a time (calls are serialized).
  void Run(size_t n, const std::function<void(size_t)>& fn);

  size_t threads() const { return workers_.size() + 1; }

 private:
  void WorkerLoop();

  absl::Mutex run_mu_;  // one Run at a time
  absl::Mutex mu_;
  const std::function<void(size_t)>* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t n_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  size_t busy_ ABSL_GUARDED_BY(mu_) = 0;  // workers inside the current Run
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<size_t> next_{0};
  std::vector<std::thread> workers_;
};

}  // namespace weft::common
