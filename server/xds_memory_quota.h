// The gRPC ResourceQuota of weftd's xDS servers, sized to the mesh.
//
// With one connection per proxy, gRPC keeps each idle connection's last
// read buffers (64 KB slices that held the last SotW ACK) unless a quota's
// pressure makes it read into small buffers and free idle ones: 2,000
// proxies held 400+ MB without a quota and 150-165 MB under 256 MB. But a
// quota too small for the streams it serves stalls them (a 48 MB quota
// stalled 336 of 2,000 streams for good in an earlier session). So the
// quota is the larger of a floor (--xds-memory-quota-mb) and a share per
// connected stream, and follows the number of streams.
#pragma once

#include <grpcpp/resource_quota.h>

#include <cstddef>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/periodic_task.h"

namespace weft::server {

class XdsMemoryQuota {
 public:
  // 128 KB a stream: twice the 64 KB a stream on which 4,000 proxies ran
  // without a stall (256 MB).
  static constexpr size_t kPerStreamBytes = 128 << 10;

  XdsMemoryQuota(size_t floor_bytes, size_t per_stream_bytes = kPerStreamBytes);
  XdsMemoryQuota(const XdsMemoryQuota&) = delete;
  XdsMemoryQuota& operator=(const XdsMemoryQuota&) = delete;

  grpc::ResourceQuota& quota() { return quota_; }
  // Sizes the quota for `streams` connected streams: max(floor, streams x
  // per stream). It is resized only when that moves by more than 1/8, so
  // that streams coming and going do not resize it each time.
  void SetStreams(size_t streams);
  size_t size() const;

  // Re-reads `streams` (the connected-streams gauge) every `interval` on a
  // thread of its own, and exports the size as weft_xds_memory_quota_bytes.
  void Follow(const common::Gauge& streams, absl::Duration interval, common::MetricsRegistry& metrics);

 private:
  const size_t floor_bytes_;
  const size_t per_stream_bytes_;
  grpc::ResourceQuota quota_;
  mutable absl::Mutex mu_;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<common::PeriodicTask> follow_;  // last: stopped first
};

}  // namespace weft::server
