// Injected time source. Components that wait or time things take a Clock&
// so tests drive time by hand (FakeClock) instead of sleeping.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

namespace weft::common {

// `t` as an RFC 3339 UTC timestamp to the second ("2026-11-26T17:00:00Z"),
// the form Kubernetes, certificates' admin views and file names use.
std::string Rfc3339Utc(std::chrono::system_clock::time_point t);

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time, for intervals and deadlines.
  virtual TimePoint Now() const = 0;
  // Wall-clock time, for timestamps shown to users and in certificates.
  virtual std::chrono::system_clock::time_point WallNow() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::now();
  }
  // The process-wide real clock.
  static RealClock& Get();
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  std::chrono::system_clock::time_point WallNow() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return wall_ + (now_ - TimePoint());
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_{};
  std::chrono::system_clock::time_point wall_{std::chrono::seconds(1'700'000'000)};
};

}  // namespace weft::common
