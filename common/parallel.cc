#include "common/parallel.h"

namespace weft::common {

ParallelRunner::ParallelRunner(size_t threads) {
  for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ParallelRunner::~ParallelRunner() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : workers_) t.join();
}

void ParallelRunner::Run(size_t n, const std::function<void(size_t)>& fn) {
  absl::MutexLock run(&run_mu_);
  if (workers_.empty() || n < 2) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    fn_ = &fn;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    generation_++;
  }
  for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i);
  absl::MutexLock lock(&mu_);
  // Every index is taken; wait for the workers still inside a call, and
  // keep late ones out of this generation.
  fn_ = nullptr;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return busy_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

void ParallelRunner::WorkerLoop() {
  uint64_t seen = 0;
  while (true) {
    const std::function<void(size_t)>* fn;
    size_t n;
    {
      absl::MutexLock lock(&mu_);
      auto work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (fn_ != nullptr && generation_ != seen);
      };
      mu_.Await(absl::Condition(&work));
      if (stopping_) return;
      seen = generation_;
      fn = fn_;
      n = n_;
      busy_++;
    }
    for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n;) (*fn)(i);
    absl::MutexLock lock(&mu_);
    busy_--;
  }
}

}  // namespace weft::common
