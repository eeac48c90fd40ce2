// The gRPC ResourceQuota of weftd's xDS servers, sized to the mesh.
//
// With one connection per proxy, gRPC keeps each connection's last read
// buffer (heaptrack: one slice of about 64 KB a connection) unless the
// quota's pressure (above 80 % in use) makes it read into small buffers and
// free idle ones. Without pressure that memory kept growing with the
// pushes: 2,000 delta proxies went from 134 to 225 MB over 1,000 changes
// under a 256 MB quota, and SotW held 400+ MB with no quota. But a quota too small for its streams makes gRPC shed them (at
// 16 KB a stream, 60 of 2,000 streams got RST_STREAM ENHANCE_YOUR_CALM or
// GOAWAY). So the quota is the larger of a floor (--xds-memory-quota-mb)
// and a share per connected stream, and follows the number of streams.
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
  // 48 KB a stream: three times the 16 KB at which gRPC shed streams, and
  // small enough for pressure to keep 2,000 proxies' read buffers in check
  // (weftd peak 139-147 MB in bench/xds_scale, against 168-201 MB at 128 KB;
  // 32 KB ran 4,000 SotW proxies and 1,000 delta changes without a shed
  // stream).
  static constexpr size_t kPerStreamBytes = 48 << 10;

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
