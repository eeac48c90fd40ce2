#include "server/xds_memory_quota.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

namespace weft::server {
namespace {

constexpr size_t kMB = 1 << 20;

TEST_CASE("XdsMemoryQuota is the larger of its floor and a share per connected stream") {
  XdsMemoryQuota quota(256 * kMB, 128 << 10);
  CHECK(quota.size() == 256 * kMB);
  quota.SetStreams(1000);  // 125 MB wanted: the floor holds
  CHECK(quota.size() == 256 * kMB);
  quota.SetStreams(4000);  // 500 MB
  CHECK(quota.size() == 4000 * (128 << 10));
  quota.SetStreams(4100);  // +2.5 %: not worth a resize
  CHECK(quota.size() == 4000 * (128 << 10));
  quota.SetStreams(10000);
  CHECK(quota.size() == 10000 * (128 << 10));
  quota.SetStreams(0);  // everyone left: back to the floor
  CHECK(quota.size() == 256 * kMB);
}

TEST_CASE("XdsMemoryQuota follows the connected-streams gauge and exports its size") {
  common::MetricsRegistry metrics;
  common::Gauge& streams = metrics.GetGauge("weft_xds_connected_streams", "");
  XdsMemoryQuota quota(64 * kMB, 64 << 10);
  quota.Follow(streams, absl::Milliseconds(5), metrics);
  common::Gauge& exported = metrics.GetGauge("weft_xds_memory_quota_bytes", "");
  CHECK(exported.Value() == 64 * kMB);
  streams.Set(3000);  // 187.5 MB
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (exported.Value() != 3000.0 * (64 << 10) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(quota.size() == 3000 * (64 << 10));
  CHECK(exported.Value() == 3000.0 * (64 << 10));
}

}  // namespace
}  // namespace weft::server
