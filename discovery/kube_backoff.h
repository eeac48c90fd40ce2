// Exponential backoff with jitter for the Kubernetes watchers (client-go's
// reflector backoff: base doubling up to a cap, each wait drawn at random
// from [base*(1-jitter), base]), and the interruptible sleeper it waits on.
// Both are injected so that tests check the sequence without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace weft::discovery {

struct BackoffPolicy {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{30000};
  double multiplier = 2.0;
  double jitter = 0.5;  // 0: none; 0.5: each wait is 50-100% of the current step
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = std::random_device{}());
  // The wait before the next attempt; grows the step for the one after.
  std::chrono::milliseconds Next();
  // After a success: the next failure waits the initial step again.
  void Reset();
  int failures() const { return failures_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  double step_ms_;
  int failures_ = 0;
};

// Waits that Stop() interrupts. A test sleeper records and returns at once.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // False when interrupted (stopping): the caller gives up.
  virtual bool SleepFor(std::chrono::milliseconds d) = 0;
  virtual void Interrupt() = 0;
};

class RealSleeper final : public Sleeper {
 public:
  bool SleepFor(std::chrono::milliseconds d) override;
  void Interrupt() override;

 private:
  absl::Mutex mu_;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace weft::discovery
