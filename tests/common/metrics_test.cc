#include "common/metrics.h"

#include <catch2/catch.hpp>

namespace weft::common {
namespace {

TEST_CASE("metrics render in Prometheus text format", "[metrics]") {
  MetricsRegistry registry;
  registry.GetCounter("weft_pushes_total", "Pushes sent.", {{"type", "cds"}}).Inc(3);
  registry.GetGauge("weft_connected_proxies", "Connected proxies.").Set(2);
  auto& h = registry.GetHistogram("weft_push_seconds", "Push latency.", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = registry.RenderPrometheus();
  CHECK(text.find("# TYPE weft_pushes_total counter\nweft_pushes_total{type=\"cds\"} 3\n") != std::string::npos);
  CHECK(text.find("weft_connected_proxies 2\n") != std::string::npos);
  CHECK(text.find("weft_push_seconds_bucket{le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("weft_push_seconds_bucket{le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("weft_push_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("weft_push_seconds_count 3\n") != std::string::npos);
}

TEST_CASE("the same name and labels give the same series", "[metrics]") {
  MetricsRegistry registry;
  registry.GetCounter("c", "help", {{"a", "1"}}).Inc();
  registry.GetCounter("c", "help", {{"a", "1"}}).Inc();
  registry.GetCounter("c", "help", {{"a", "2"}}).Inc();
  CHECK(registry.GetCounter("c", "help", {{"a", "1"}}).Value() == 2);
  CHECK(registry.GetCounter("c", "help", {{"a", "2"}}).Value() == 1);
}

}  // namespace
}  // namespace weft::common
