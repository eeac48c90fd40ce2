// Debounces mesh changes before they are compiled and pushed (Istio's
// debounce()): a burst of changes becomes one push once the mesh has been
// quiet for `quiet_period`, or `max_delay` after the first unpushed change,
// whichever comes first. Only the newest snapshot is pushed; the time of the
// first change it contains goes with it, for change->ACK convergence.
// The clock is injected: tests call Poll() with a FakeClock; weftd runs the
// background loop with the real clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "discovery/mesh_snapshot.h"

namespace weft::server {

struct DebounceOptions {
  std::chrono::milliseconds quiet_period{20};
  std::chrono::milliseconds max_delay{500};
};

class PushDebouncer {
 public:
  using Flush = std::function<void(discovery::MeshSnapshotConstSharedPtr mesh,
                                   common::Clock::TimePoint first_change)>;

  PushDebouncer(common::Clock& clock, DebounceOptions options, Flush flush);
  ~PushDebouncer();

  // Records a new snapshot. The very first one is flushed at once (nothing
  // has been served yet, so there is nothing to coalesce with).
  void Add(discovery::MeshSnapshotConstSharedPtr mesh);

  // Flushes when due at the clock's current time. Returns when the next
  // check is due, or nullopt when nothing is pending.
  std::optional<common::Clock::TimePoint> Poll();

  // Runs Poll() on a background thread until Stop().
  void Start();
  void Stop();

  uint64_t flushes() const;

 private:
  // Under mu_: whether a flush is due now, and if not, when.
  std::optional<common::Clock::TimePoint> NextDeadlineLocked() const;

  common::Clock& clock_;
  const DebounceOptions options_;
  const Flush flush_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  discovery::MeshSnapshotConstSharedPtr pending_;
  common::Clock::TimePoint first_change_{};
  common::Clock::TimePoint last_change_{};
  bool flushed_any_ = false;
  bool stopping_ = false;
  uint64_t flushes_ = 0;
  std::thread thread_;
  std::mutex flush_mu_;  // one flush at a time, in order
};

}  // namespace weft::server
