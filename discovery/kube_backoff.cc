#include "discovery/kube_backoff.h"

#include <algorithm>

#include "absl/time/time.h"

namespace weft::discovery {

Backoff::Backoff(BackoffPolicy policy, uint64_t seed)
    : policy_(policy), rng_(seed), step_ms_(static_cast<double>(policy.initial.count())) {}

std::chrono::milliseconds Backoff::Next() {
  const double cap = static_cast<double>(policy_.max.count());
  const double step = std::min(step_ms_, cap);
  std::uniform_real_distribution<double> dist(1.0 - std::clamp(policy_.jitter, 0.0, 1.0), 1.0);
  const double wait = step * dist(rng_);
  step_ms_ = std::min(step * policy_.multiplier, cap);
  ++failures_;
  return std::chrono::milliseconds(static_cast<int64_t>(wait));
}

void Backoff::Reset() {
  step_ms_ = static_cast<double>(policy_.initial.count());
  failures_ = 0;
}

bool RealSleeper::SleepFor(std::chrono::milliseconds d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(+[](bool* interrupted) { return *interrupted; }, &interrupted_),
                       absl::FromChrono(d));
  return !interrupted_;
}

void RealSleeper::Interrupt() {
  absl::MutexLock lock(&mu_);
  interrupted_ = true;
}

}  // namespace weft::discovery
