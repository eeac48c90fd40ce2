// Retries (proxy/retry_state.h and the route's retry_policy in
// proxy/route_table.h): which outcomes each retry_on condition retries,
// jittered back-off bounds, the policy compiled from a TrafficPolicy, and
// retry policies weft-proxy must refuse.
#include <catch2/catch.hpp>

#include "google/protobuf/text_format.h"
#include "proxy/retry_state.h"
#include "proxy/route_table.h"

namespace weft::proxy {
namespace {

RetryPolicy On(std::initializer_list<const char*> conditions) {
  RetryPolicy p;
  for (std::string c : conditions) {
    if (c == "5xx") p.on_5xx = true;
    if (c == "gateway-error") p.on_gateway_error = true;
    if (c == "connect-failure") p.on_connect_failure = true;
    if (c == "reset") p.on_reset = true;
    if (c == "retriable-4xx") p.on_retriable_4xx = true;
  }
  return p;
}

TEST_CASE("retry_on: which outcomes are retried", "[proxy][retry]") {
  using O = AttemptOutcome;
  const RetryPolicy five = On({"5xx"}), gw = On({"gateway-error"}), cf = On({"connect-failure"}),
                    rs = On({"reset"}), r4 = On({"retriable-4xx"});
  CHECK(ShouldRetry(five, O::kResponse, 500));
  CHECK(ShouldRetry(five, O::kResponse, 503));
  CHECK_FALSE(ShouldRetry(five, O::kResponse, 404));
  CHECK_FALSE(ShouldRetry(five, O::kResponse, 200));
  CHECK(ShouldRetry(five, O::kReset, 0));
  CHECK(ShouldRetry(five, O::kConnectFailure, 0));
  CHECK(ShouldRetry(five, O::kPerTryTimeout, 0));

  CHECK_FALSE(ShouldRetry(gw, O::kResponse, 500));
  for (int s : {502, 503, 504}) CHECK(ShouldRetry(gw, O::kResponse, s));
  CHECK(ShouldRetry(gw, O::kPerTryTimeout, 0));

  CHECK(ShouldRetry(cf, O::kConnectFailure, 0));
  CHECK_FALSE(ShouldRetry(cf, O::kReset, 0));
  CHECK_FALSE(ShouldRetry(cf, O::kResponse, 503));
  CHECK_FALSE(ShouldRetry(cf, O::kPerTryTimeout, 0));

  CHECK(ShouldRetry(rs, O::kReset, 0));
  CHECK(ShouldRetry(rs, O::kConnectFailure, 0));
  CHECK_FALSE(ShouldRetry(rs, O::kResponse, 503));

  CHECK(ShouldRetry(r4, O::kResponse, 409));
  CHECK_FALSE(ShouldRetry(r4, O::kResponse, 400));
  CHECK_FALSE(ShouldRetry(r4, O::kResponse, 503));

  RetryPolicy codes;
  codes.retriable_status_codes = {418};
  CHECK(ShouldRetry(codes, O::kResponse, 418));
  CHECK_FALSE(ShouldRetry(codes, O::kReset, 0));
}

TEST_CASE("retry back-off: jittered, exponential, capped", "[proxy][retry]") {
  RetryPolicy p;  // 25 ms base, 250 ms max
  uint64_t max_seen[6] = {};
  for (uint64_t r = 0; r < 5000; ++r) {
    for (uint32_t retry = 1; retry <= 5; ++retry) {
      uint64_t b = RetryBackoffMs(p, retry, r * 7919 + retry);
      max_seen[retry] = std::max(max_seen[retry], b);
    }
  }
  CHECK(max_seen[1] == 25);
  CHECK(max_seen[2] == 50);
  CHECK(max_seen[3] == 100);
  CHECK(max_seen[4] == 200);
  CHECK(max_seen[5] == 250);
}

envoy::config::route::v3::RouteConfiguration Routes(const std::string& retry_policy) {
  envoy::config::route::v3::RouteConfiguration rc;
  REQUIRE(
      google::protobuf::TextFormat::ParseFromString("name: \"r\" virtual_hosts { name: \"v\" domains: \"*\" "
                                                    "routes { match { prefix: \"/\" } route { cluster: "
                                                    "\"c\" timeout { seconds: 2 } " +
                                                        retry_policy + " } } }",
                                                    &rc));
  return rc;
}

TEST_CASE("route retry_policy: parsed as compiled from a TrafficPolicy, or refused", "[proxy][retry]") {
  // What weftd emits for retries {attempts: 3, perTryTimeout: 500ms, retryOn: [5xx, gateway-error,
  // connect-failure, reset]}.
  auto table = RouteTable::Create(Routes(
      R"(retry_policy { retry_on: "5xx,gateway-error,connect-failure,reset" num_retries { value: 3 } per_try_timeout { nanos: 500000000 } })"));
  REQUIRE(table.ok());
  const RouteEntry* route =
      RouteTable::FindRoute(*(*table)->FindVirtualHost("x"), {"x", "GET", "/", nullptr});
  REQUIRE(route != nullptr);
  REQUIRE(route->retry);
  CHECK(route->timeout_ms == 2000);
  CHECK(route->retry->num_retries == 3);
  CHECK(route->retry->per_try_timeout_ms == 500);
  CHECK(route->retry->on_5xx);
  CHECK(route->retry->on_gateway_error);
  CHECK(route->retry->on_connect_failure);
  CHECK(route->retry->on_reset);
  CHECK_FALSE(route->retry->on_retriable_4xx);

  // Envoy's defaults: one retry; back-off from retry_back_off.
  auto defaults = RouteTable::Create(Routes(
      R"(retry_policy { retry_on: "retriable-4xx, retriable-status-codes" retriable_status_codes: 418 retry_back_off { base_interval { nanos: 100000000 } } })"));
  REQUIRE(defaults.ok());
  const RouteEntry* d = RouteTable::FindRoute(*(*defaults)->FindVirtualHost("x"), {"x", "GET", "/", nullptr});
  REQUIRE(d->retry);
  CHECK(d->retry->num_retries == 1);
  CHECK(d->retry->on_retriable_4xx);
  CHECK(d->retry->retriable_status_codes == std::vector<uint32_t>{418});
  CHECK(d->retry->base_interval_ms == 100);
  CHECK(d->retry->max_interval_ms == 1000);

  auto bad = RouteTable::Create(
      Routes(R"(retry_policy { retry_on: "5xx,on-a-full-moon" per_try_idle_timeout { seconds: 1 } })"));
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK(msg.find(
            "virtual_hosts[0].routes[0].route.retry_policy.retry_on: \"on-a-full-moon\" is not supported") !=
        std::string::npos);
  CHECK(msg.find("virtual_hosts[0].routes[0].route.retry_policy: only retry_on") != std::string::npos);
}

}  // namespace
}  // namespace weft::proxy
