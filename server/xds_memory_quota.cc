#include "server/xds_memory_quota.h"

#include <algorithm>

namespace weft::server {

XdsMemoryQuota::XdsMemoryQuota(size_t floor_bytes, size_t per_stream_bytes)
    : floor_bytes_(floor_bytes), per_stream_bytes_(per_stream_bytes), quota_("weftd-xds") {
  absl::MutexLock lock(&mu_);
  size_ = floor_bytes_;
  quota_.Resize(size_);
}

void XdsMemoryQuota::SetStreams(size_t streams) {
  const size_t want = std::max(floor_bytes_, streams * per_stream_bytes_);
  absl::MutexLock lock(&mu_);
  const size_t step = size_ / 8;
  if (want == size_ || (want > size_ ? want - size_ : size_ - want) <= step) return;
  size_ = want;
  quota_.Resize(size_);
}

size_t XdsMemoryQuota::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

void XdsMemoryQuota::Follow(const common::Gauge& streams, absl::Duration interval,
                            common::MetricsRegistry& metrics) {
  common::Gauge& exported =
      metrics.GetGauge("weft_xds_memory_quota_bytes",
                       "Memory gRPC may reserve for the xDS servers' connections (ResourceQuota).");
  exported.Set(static_cast<double>(size()));
  follow_.emplace(interval, [this, &streams, &exported] {
    SetStreams(static_cast<size_t>(std::max(0.0, streams.Value())));
    exported.Set(static_cast<double>(size()));
  });
}

}  // namespace weft::server
