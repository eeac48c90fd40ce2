// The resilience pieces of weft-proxy (issue 8) as pure logic: circuit
// breaker counters and retry budgets (proxy/circuit_breaker.h), outlier
// ejection math under a FakeClock (proxy/outlier_detector.h), fault
// percentage sampling with a seeded generator (proxy/fault_filter.h),
// traceparent parsing/generation and access-log lines (proxy/access_log.h),
// the shadow host of mirrors. (proxy_config_test reads back the fields
// weftd compiles from a TrafficPolicy.)
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/match.h"
#include "google/protobuf/text_format.h"
#include "proxy/access_log.h"
#include "proxy/circuit_breaker.h"
#include "proxy/fault_filter.h"
#include "proxy/outlier_detector.h"
#include "proxy/request_mirror.h"

namespace weft::proxy {
namespace {

template <typename T>
T Parse(const std::string& text) {
  T msg;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &msg));
  return msg;
}

TEST_CASE("circuit breaker: limits per resource, released slots, Envoy defaults",
          "[proxy][circuit_breaker]") {
  auto t =
      ParseCircuitBreakers(Parse<envoy::config::cluster::v3::CircuitBreakers>(
                               "thresholds { max_connections { value: 2 } max_pending_requests { value: 1 } "
                               "max_requests { value: 3 } max_retries { value: 1 } }"),
                           "Cluster c.circuit_breakers");
  REQUIRE(t.ok());
  CHECK(t->max_connections == 2);
  CHECK(t->max_pending_requests == 1);
  CHECK(t->max_requests == 3);
  CHECK(t->max_retries == 1);

  CircuitBreaker b;
  std::vector<BreakerSlot> held;
  for (int i = 0; i < 3; ++i) {
    auto s = BreakerSlot::Take(b, BreakerResource::kRequests, *t);
    REQUIRE(s);
    held.push_back(std::move(*s));
  }
  CHECK_FALSE(BreakerSlot::Take(b, BreakerResource::kRequests, *t));  // the 4th overflows
  CHECK(b.Active(BreakerResource::kRequests) == 3);
  held.pop_back();  // one finishes
  CHECK(b.Active(BreakerResource::kRequests) == 2);
  CHECK(BreakerSlot::Take(b, BreakerResource::kRequests, *t));
  // Resources are independent.
  auto r1 = BreakerSlot::Take(b, BreakerResource::kRetries, *t);
  CHECK(r1);
  CHECK_FALSE(BreakerSlot::Take(b, BreakerResource::kRetries, *t));
  auto p1 = BreakerSlot::Take(b, BreakerResource::kPending, *t);
  CHECK(p1);
  CHECK_FALSE(BreakerSlot::Take(b, BreakerResource::kPending, *t));

  CircuitBreakerThresholds defaults;
  CHECK(defaults.max_connections == 1024);
  CHECK(defaults.max_retries == 3);
}

TEST_CASE("retry budget: a share of active requests, at least min_retry_concurrency",
          "[proxy][circuit_breaker]") {
  auto t = ParseCircuitBreakers(
      Parse<envoy::config::cluster::v3::CircuitBreakers>(
          "thresholds { max_retries { value: 1 } retry_budget { budget_percent { value: 25 } "
          "min_retry_concurrency { value: 2 } } }"),
      "c");
  REQUIRE(t.ok());
  REQUIRE(t->retry_budget);
  CircuitBreaker b;
  // No requests: the floor of 2 (max_retries is replaced by the budget).
  CHECK(b.RetryLimit(*t) == 2);
  std::vector<BreakerSlot> requests;
  for (int i = 0; i < 20; ++i)
    requests.push_back(std::move(*BreakerSlot::Take(b, BreakerResource::kRequests, *t)));
  CHECK(b.RetryLimit(*t) == 5);  // 25% of 20
  std::vector<BreakerSlot> retries;
  for (int i = 0; i < 5; ++i) {
    auto s = BreakerSlot::Take(b, BreakerResource::kRetries, *t);
    REQUIRE(s);
    retries.push_back(std::move(*s));
  }
  CHECK_FALSE(BreakerSlot::Take(b, BreakerResource::kRetries, *t));
  // Envoy's defaults: 20%, at least 3.
  auto d = ParseCircuitBreakers(
      Parse<envoy::config::cluster::v3::CircuitBreakers>("thresholds { retry_budget {} }"), "c");
  REQUIRE(d.ok());
  CHECK(d->retry_budget->budget_percent == 20.0);
  CHECK(d->retry_budget->min_retry_concurrency == 3);
}

TEST_CASE("circuit breakers weft-proxy cannot honour are refused with their place",
          "[proxy][circuit_breaker]") {
  auto high = ParseCircuitBreakers(Parse<envoy::config::cluster::v3::CircuitBreakers>(
                                       "thresholds { priority: HIGH max_requests { value: 1 } }"),
                                   "Cluster x.circuit_breakers");
  REQUIRE_FALSE(high.ok());
  CHECK(absl::StrContains(high.status().message(), "Cluster x.circuit_breakers.thresholds[0].priority"));
  auto per_host = ParseCircuitBreakers(Parse<envoy::config::cluster::v3::CircuitBreakers>(
                                           "per_host_thresholds { max_connections { value: 1 } }"),
                                       "p");
  CHECK_FALSE(per_host.ok());
}

OutlierConfig Outlier(uint32_t c5xx, uint32_t gateway, uint64_t base_ms, uint32_t max_percent) {
  OutlierConfig c;
  c.consecutive_5xx = c5xx;
  c.consecutive_gateway_failure = gateway;
  c.enforcing_consecutive_gateway_failure = 100;
  c.interval_ms = 10000;
  c.base_ejection_time_ms = base_ms;
  c.max_ejection_percent = max_percent;
  return c;
}

TEST_CASE("outlier detection: consecutive 5xx eject for base time x ejections", "[proxy][outlier]") {
  common::FakeClock clock;
  OutlierDetector d(clock);
  const OutlierConfig c = Outlier(3, 0, 30000, 50);
  CHECK_FALSE(d.Record(c, "a", 500, 4));
  CHECK_FALSE(d.Record(c, "a", 500, 4));
  CHECK_FALSE(d.Record(c, "a", 200, 4));  // a success resets the count
  CHECK_FALSE(d.Record(c, "a", 500, 4));
  CHECK_FALSE(d.Record(c, "a", 500, 4));
  CHECK(d.Record(c, "a", 500, 4));  // the 3rd in a row
  CHECK(d.IsEjected("a"));
  CHECK_FALSE(d.IsEjected("b"));
  clock.Advance(std::chrono::milliseconds(29999));
  CHECK(d.IsEjected("a"));
  clock.Advance(std::chrono::milliseconds(1));
  CHECK_FALSE(d.IsEjected("a"));  // back after 30 s
  // Ejected again soon after: 2 × base.
  for (int i = 0; i < 2; ++i) d.Record(c, "a", 503, 4);
  REQUIRE(d.Record(c, "a", 503, 4));
  CHECK(d.Ejections("a") == 2);
  clock.Advance(std::chrono::milliseconds(59999));
  CHECK(d.IsEjected("a"));
  clock.Advance(std::chrono::milliseconds(1));
  CHECK_FALSE(d.IsEjected("a"));
  // Each interval back in service takes one off the multiplier.
  clock.Advance(std::chrono::milliseconds(10000));
  CHECK(d.Ejections("a") == 1);
  clock.Advance(std::chrono::milliseconds(10000));
  CHECK(d.Ejections("a") == 0);
}

TEST_CASE("outlier detection: gateway failures, local failures, max ejection percent", "[proxy][outlier]") {
  common::FakeClock clock;
  OutlierDetector d(clock);
  const OutlierConfig c = Outlier(0, 2, 1000, 50);
  CHECK_FALSE(d.Record(c, "a", 500, 4));  // a 500 is not a gateway failure
  CHECK_FALSE(d.Record(c, "a", 502, 4));
  CHECK(d.Record(c, "a", 0, 4));  // connect failure / reset count as gateway failures
  CHECK_FALSE(d.Record(c, "b", 504, 4));
  CHECK(d.Record(c, "b", 503, 4));  // 2 of 4 = 50%: allowed
  CHECK(d.EjectedCount() == 2);
  d.Record(c, "c", 503, 4);
  CHECK_FALSE(d.Record(c, "c", 503, 4));  // 3 of 4 would exceed 50%
  CHECK_FALSE(d.IsEjected("c"));
  // One host may always be ejected, even at a 0% cap.
  OutlierDetector one(clock);
  const OutlierConfig zero = Outlier(1, 0, 1000, 0);
  CHECK(one.Record(zero, "x", 500, 10));
  CHECK_FALSE(one.Record(zero, "y", 500, 10));
  // Enforcement below 100% is sampled.
  OutlierConfig half = Outlier(1, 0, 1000, 100);
  half.enforcing_consecutive_5xx = 50;
  OutlierDetector sampled(clock);
  CHECK_FALSE(sampled.Record(half, "h", 500, 2, 70));
  CHECK(sampled.Record(half, "h", 500, 2, 10));
}

TEST_CASE("outlier detection config: Envoy defaults and refused detectors", "[proxy][outlier]") {
  auto d =
      ParseOutlierDetection(envoy::config::cluster::v3::OutlierDetection(), "Cluster c.outlier_detection");
  REQUIRE(d.ok());
  CHECK(d->consecutive_5xx == 5);
  CHECK(d->enforcing_consecutive_gateway_failure == 0);
  CHECK(d->base_ejection_time_ms == 30000);
  CHECK(d->max_ejection_percent == 10);
  auto sr = ParseOutlierDetection(
      Parse<envoy::config::cluster::v3::OutlierDetection>("enforcing_success_rate { value: 100 }"),
      "Cluster c.outlier_detection");
  REQUIRE_FALSE(sr.ok());
  CHECK(absl::StrContains(sr.status().message(), "Cluster c.outlier_detection: the success-rate detector"));
}

TEST_CASE("fault injection: percentages sampled within tolerance, delay then abort", "[proxy][fault]") {
  auto f = ParseFault(Parse<envoy::extensions::filters::http::fault::v3::HTTPFault>(
                          "delay { fixed_delay { nanos: 100000000 } percentage { numerator: 10 } } "
                          "abort { http_status: 503 percentage { numerator: 30 } }"),
                      "route");
  REQUIRE(f.ok());
  CHECK((*f)->delay_ms == 100u);
  CHECK((*f)->delay_per_million == 100000);
  CHECK((*f)->abort_status == 503);
  std::mt19937_64 rng(42);
  int delays = 0, aborts = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    FaultDecision d = DecideFault(**f, rng(), rng());
    if (d.delay_ms == 100) ++delays;
    if (d.abort_status == 503) ++aborts;
  }
  CHECK(delays > n * 0.09);
  CHECK(delays < n * 0.11);
  CHECK(aborts > n * 0.29);
  CHECK(aborts < n * 0.31);
  // Denominators.
  CHECK(PerMillion(Parse<envoy::type::v3::FractionalPercent>("numerator: 5 denominator: TEN_THOUSAND")) ==
        500);
  CHECK(PerMillion(Parse<envoy::type::v3::FractionalPercent>("numerator: 7 denominator: MILLION")) == 7);
  CHECK(PerMillion(Parse<envoy::type::v3::FractionalPercent>("numerator: 200")) == 1000000);
  // An absent percentage is 0% (Envoy's); 100% always fires.
  auto none = ParseFault(
      Parse<envoy::extensions::filters::http::fault::v3::HTTPFault>("abort { http_status: 500 }"), "r");
  REQUIRE(none.ok());
  CHECK(DecideFault(**none, 0, 0).abort_status == 0);
  auto all = ParseFault(Parse<envoy::extensions::filters::http::fault::v3::HTTPFault>(
                            "abort { http_status: 418 percentage { numerator: 100 } }"),
                        "r");
  REQUIRE(all.ok());
  CHECK(DecideFault(**all, 0, 999999).abort_status == 418);
}

TEST_CASE("fault injection: unsupported fields refused with their place", "[proxy][fault]") {
  auto header =
      ParseFault(Parse<envoy::extensions::filters::http::fault::v3::HTTPFault>("abort { header_abort {} }"),
                 "virtual_hosts[0].routes[0].typed_per_filter_config");
  REQUIRE_FALSE(header.ok());
  CHECK(absl::StrContains(header.status().message(),
                          "virtual_hosts[0].routes[0].typed_per_filter_config.abort"));
  auto status = ParseFault(
      Parse<envoy::extensions::filters::http::fault::v3::HTTPFault>("abort { http_status: 99 }"), "r");
  CHECK_FALSE(status.ok());
}

TEST_CASE("traceparent: W3C parse rules and generation", "[proxy][trace]") {
  const std::string valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto t = ParseTraceparent(valid);
  REQUIRE(t);
  CHECK(t->trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(t->span_id == "00f067aa0ba902b7");
  CHECK(t->Format() == valid);
  CHECK_FALSE(ParseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));  // zero trace id
  CHECK_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));  // zero span id
  CHECK_FALSE(ParseTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));  // upper case
  CHECK_FALSE(ParseTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(ParseTraceparent(valid + "-x"));  // version 00 has exactly four fields
  CHECK_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"));
  CHECK(
      ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"));  // later versions
  CHECK_FALSE(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));

  TraceContext n = NewTraceContext(0x1234, 0, 0);
  auto round = ParseTraceparent(n.Format());
  REQUIRE(round);  // zero inputs still give valid ids
  CHECK(round->trace_id == "00000000000012340000000000000000");
  CHECK(round->span_id == "0000000000000001");
  CHECK(NewTraceparent(0xabc, 0x1, 0xfedcba9876543210ULL) ==
        "00-0000000000000abc0000000000000001-fedcba9876543210-01");
  std::mt19937_64 rng(7);
  HttpHead head;
  std::string id;
  EnsureTraceparent(head, rng, &id);
  CHECK(id.size() == 32);
  REQUIRE(head.Get("traceparent"));
  CHECK(ParseTraceparent(*head.Get("traceparent"))->trace_id == id);
  // A valid one is kept unchanged; an invalid one is replaced and its tracestate dropped.
  HttpHead kept;
  kept.Set("traceparent", valid);
  std::string kept_id;
  EnsureTraceparent(kept, rng, &kept_id);
  CHECK(kept_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(kept.Get("traceparent") == valid);
  HttpHead bad;
  bad.Set("traceparent", "garbage");
  bad.Set("tracestate", "a=b");
  std::string bad_id;
  EnsureTraceparent(bad, rng, nullptr);  // the id is optional
  CHECK(ParseTraceparent(*bad.Get("traceparent")));
  bad.Set("traceparent", "garbage");
  EnsureTraceparent(bad, rng, &bad_id);
  CHECK(bad_id.size() == 32);
  CHECK(ParseTraceparent(*bad.Get("traceparent")));
  CHECK_FALSE(bad.Get("tracestate"));
}

TEST_CASE("access log line: one JSON object with the fields", "[proxy][access_log]") {
  AccessLogEntry e;
  e.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  e.duration_ms = 1.23456;
  e.direction = "outbound";
  e.method = "GET";
  e.path = "/pay?x=\"1\"\xff";
  e.response_code = 503;
  e.response_flags = "UO";
  e.upstream_cluster = "outbound|80||payments.shop.svc.cluster.local";
  e.upstream_host = "127.0.0.3:15006";
  e.source_identity = "spiffe://cluster.local/ns/shop/sa/orders";
  e.request_id = "r-1";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string line = FormatAccessLogLine(e);
  CHECK(line.find('\n') == std::string::npos);
  auto j = nlohmann::json::parse(line);
  CHECK(j["start_time"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["method"] == "GET");
  CHECK(j["response_code"] == 503);
  CHECK(j["response_flags"] == "UO");
  CHECK(j["duration_ms"] == Approx(1.234));
  CHECK(j["upstream_host"] == "127.0.0.3:15006");
  CHECK(j["source_identity"] == "spiffe://cluster.local/ns/shop/sa/orders");
  CHECK(j["destination_identity"] == "");
  CHECK(j["x_request_id"] == "r-1");
  CHECK(j["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(absl::StartsWith(j["path"].get<std::string>(), "/pay?x=\"1\""));
}

TEST_CASE("mirrors: Envoy's shadow host", "[proxy][mirror]") {
  CHECK(ShadowHost("payments") == "payments-shadow");
  CHECK(ShadowHost("payments.shop:8080") == "payments.shop-shadow:8080");
  CHECK(ShadowHost("10.0.0.1:80") == "10.0.0.1-shadow:80");
}

}  // namespace
}  // namespace weft::proxy
