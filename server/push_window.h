// Bounds how many proxies have a pushed update they have not answered yet.
// After a change weftd pushes to every affected proxy; without a bound all
// of them answer at once, and a state-of-the-world ACK repeats the proxy's
// whole subscription (an Envoy ACK for endpoints names every cluster: ~50 KB
// in a 1,000-service mesh), so thousands of answers sat in gRPC's buffers
// at the same moment. The fan-out takes a slot per proxy it pushes to and
// waits for a free one; the proxy's ACK or NACK (or its stream closing)
// gives it back. Istio bounds concurrent pushes the same way
// (PILOT_PUSH_THROTTLE). A proxy that does not answer within `slot_timeout`
// stops counting, so proxies that never answer cannot stall the mesh.
//
// weftd runs it unbounded by default (--push-window=0): the burst above
// comes from many proxies sharing one connection (100 streams on each of
// 20 in a benchmark). With one connection per proxy, as proxies connect,
// the xDS memory quota (xds_memory_quota.h) bounds the answers' buffers and
// a window of 250 only delayed pushes: change->ACK p99 154-166 ms without
// it, 210 ms with it, the same peak RSS (2,000 SotW proxies, idle machine).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace weft::server {

class PushWindow {
 public:
  // size 0: unbounded. Metrics are registered when `metrics` is given.
  PushWindow(size_t size, absl::Duration slot_timeout, common::MetricsRegistry* metrics = nullptr);

  // Takes a slot and returns its id (never 0), for Release. When none is
  // free and `may_wait`, waits until one is given back or times out;
  // without `may_wait` it takes one over the bound at once. Only the
  // fan-out threads may wait: gRPC's threads carry the answers that free
  // slots.
  uint64_t Acquire(bool may_wait);
  // Gives a slot back; a slot that timed out is already free.
  void Release(uint64_t slot);

  size_t in_use() const;
  size_t size() const { return size_; }

 private:
  void ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateGaugeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t size_;
  const absl::Duration slot_timeout_;
  common::Gauge* in_use_gauge_ = nullptr;
  common::Counter* waits_ = nullptr;
  common::Counter* overruns_ = nullptr;
  common::Counter* timeouts_ = nullptr;
  mutable absl::Mutex mu_;
  uint64_t next_slot_ ABSL_GUARDED_BY(mu_) = 1;
  // Slot id -> when it was taken; ids grow, so the oldest comes first.
  std::map<uint64_t, absl::Time> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::server
