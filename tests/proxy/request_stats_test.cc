// The data path's cached metrics (proxy/request_stats.h) and read-buffer
// pool (proxy/buffer_pool.h): what /stats/prometheus shows must be what the
// uncached registry calls showed (same names, labels and counts), and a
// returned buffer is handed out again instead of a new one.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "common/metrics.h"
#include "proxy/buffer_pool.h"
#include "proxy/request_stats.h"

namespace weft::proxy {
namespace {

TEST_CASE("request stats count per direction, cluster and code through cached series", "[proxy][stats]") {
  common::MetricsRegistry metrics;
  RequestStats stats(metrics);
  for (int i = 0; i < 3; ++i) stats.Record("outbound", "outbound|80||b.shop.svc.cluster.local", 200, 0.002);
  stats.Record("outbound", "outbound|80||b.shop.svc.cluster.local", 503, 0.004);
  stats.Record("inbound", "inbound|8080||", 200, 0.5);
  // A second cache on the same registry (another worker) adds to the same series.
  RequestStats other(metrics);
  other.Record("outbound", "outbound|80||b.shop.svc.cluster.local", 200, 0.002);

  const std::string text = metrics.RenderPrometheus();
  INFO(text);
  CHECK(absl::StrContains(text,
                          "weft_proxy_requests_total{cluster=\"outbound|80||b.shop.svc.cluster.local\",code="
                          "\"200\",direction=\"outbound\"} 4"));
  CHECK(absl::StrContains(text,
                          "weft_proxy_requests_total{cluster=\"outbound|80||b.shop.svc.cluster.local\",code="
                          "\"503\",direction=\"outbound\"} 1"));
  CHECK(absl::StrContains(
      text, "weft_proxy_requests_total{cluster=\"inbound|8080||\",code=\"200\",direction=\"inbound\"} 1"));
  CHECK(absl::StrContains(text, "weft_proxy_request_duration_seconds_count{direction=\"outbound\"} 5"));
  CHECK(absl::StrContains(text, "weft_proxy_request_duration_seconds_count{direction=\"inbound\"} 1"));
}

TEST_CASE("the buffer pool hands a returned buffer out again and keeps at most max_idle", "[proxy][stats]") {
  BufferPool pool(1024, 1);
  const char* first = nullptr;
  {
    BufferPool::Lease a(pool);
    CHECK(a.buffer().size() == 1024);
    first = a.buffer().data();
    BufferPool::Lease b(pool);  // a is taken: a new buffer
    CHECK(b.buffer().data() != first);
  }
  CHECK(pool.idle() == 1);  // b came back first, a was one too many
  BufferPool::Lease c(pool);
  CHECK(c.buffer().size() == 1024);
  CHECK(pool.idle() == 0);
}

TEST_CASE("a read buffer stays small until a read fills it, and is small again after Shrink",
          "[proxy][buffers]") {
  BufferPool pool(16 * 1024, 4);
  ReadBuffer rb(pool);
  char* small = rb.data();
  CHECK(rb.size() == ReadBuffer::kSmallBytes);
  rb.Filled(100);  // a small request: no pooled buffer
  CHECK_FALSE(rb.pooled());
  CHECK(rb.data() == small);
  rb.Filled(ReadBuffer::kSmallBytes);  // a large head: the next read goes to the pool
  CHECK(rb.pooled());
  CHECK(rb.size() == 16 * 1024);
  CHECK(rb.data() != small);
  CHECK(pool.idle() == 0);
  rb.Filled(16 * 1024);  // stays pooled
  CHECK(rb.pooled());
  rb.Shrink();  // between requests: the pooled buffer goes back
  CHECK_FALSE(rb.pooled());
  CHECK(rb.data() == small);
  CHECK(pool.idle() == 1);
}

}  // namespace
}  // namespace weft::proxy
