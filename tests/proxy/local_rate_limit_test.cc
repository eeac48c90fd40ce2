// The local rate limit (proxy/local_rate_limit.h): the token bucket under an
// injected clock (starts full, discrete refills, capped, retry-after), the
// config weftd compiles for a RateLimitPolicy agreeing with the simulator's
// burst semantics, and configs weft-proxy must refuse.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "google/protobuf/text_format.h"
#include "policy/compiler.h"
#include "proxy/local_rate_limit.h"
#include "proxy/proxy_config.h"
#include "proxy/route_table.h"
#include "tests/testing/golden.h"
#include "tests/testing/xds_simulator.h"

namespace weft::proxy {
namespace {

using std::chrono::milliseconds;

TEST_CASE("token bucket: starts full, refills per interval, capped at max", "[proxy][ratelimit]") {
  common::FakeClock clock;
  TokenBucket bucket(3, 2, milliseconds(1000), clock.Now());
  for (int i = 0; i < 3; ++i) CHECK(bucket.TryConsume(clock.Now()));
  CHECK_FALSE(bucket.TryConsume(clock.Now()));
  CHECK(bucket.SecondsUntilRefill(clock.Now()) == 1);
  clock.Advance(milliseconds(999));
  CHECK_FALSE(bucket.TryConsume(clock.Now()));  // no partial refills
  clock.Advance(milliseconds(1));
  CHECK(bucket.TryConsume(clock.Now()));  // tokens_per_fill = 2
  CHECK(bucket.TryConsume(clock.Now()));
  CHECK_FALSE(bucket.TryConsume(clock.Now()));
  clock.Advance(milliseconds(10'500));  // ten fills, capped at max_tokens
  for (int i = 0; i < 3; ++i) CHECK(bucket.TryConsume(clock.Now()));
  CHECK_FALSE(bucket.TryConsume(clock.Now()));
  // Fills stay aligned to the interval: 500 ms into the current one.
  clock.Advance(milliseconds(400));
  CHECK_FALSE(bucket.TryConsume(clock.Now()));
  clock.Advance(milliseconds(100));
  CHECK(bucket.TryConsume(clock.Now()));

  TokenBucket per_minute(1, 1, milliseconds(60'000), clock.Now());
  CHECK(per_minute.TryConsume(clock.Now()));
  clock.Advance(milliseconds(15'200));
  CHECK_FALSE(per_minute.TryConsume(clock.Now()));
  CHECK(per_minute.SecondsUntilRefill(clock.Now()) == 45);  // rounded up
}

policy::ProxyResources CompileGolden(const std::string& golden, const std::string& sa,
                                     const std::string& ip) {
  auto out = testing::CompileGoldenForSidecar(golden, "shop", sa, ip);
  INFO(out.status().message());
  REQUIRE(out.ok());
  return *std::move(out);
}

// What weft-proxy builds from the compiled resources.
ProxyConfigConstSharedPtr ProxyConfigOf(const policy::ProxyResources& compiled) {
  XdsResources r;
  for (const auto& [type, resources] : compiled.resources) {
    for (const auto& [name, res] : resources) r.by_type[std::string(type)][name] = {*res.body, "1"};
  }
  auto cfg = ProxyConfig::Build(r);
  REQUIRE(cfg.ok());
  return *std::move(cfg);
}

TEST_CASE("local rate limit: the compiled RateLimitPolicy, burst by burst like the simulator",
          "[proxy][ratelimit]") {
  auto compiled = CompileGolden("rate_limit", "orders", "10.0.1.1");
  auto cfg = ProxyConfigOf(compiled);
  const InboundPort* port = cfg->Inbound(18081);
  REQUIRE(port != nullptr);
  REQUIRE(port->mtls);
  const InboundChain& chain = *port->mtls;
  CHECK(chain.unenforced_filters.empty());
  // The workload's limit, then the per-route one (the checkout HTTPRoute
  // also sends to orders).
  REQUIRE(chain.filters.size() == 2);
  REQUIRE(chain.filters[0].rate_limit);
  const LocalRateLimitConfig& limit = *chain.filters[0].rate_limit;
  CHECK(limit.max_tokens() == 120);  // requests 100 + burst 20
  CHECK(limit.tokens_per_fill() == 100);
  CHECK(limit.fill_interval() == milliseconds(1000));
  CHECK(limit.status() == 429);
  CHECK(limit.enabled_percent() == 100);
  CHECK(limit.enforced_percent() == 100);
  REQUIRE(limit.has_retry_after());

  // A burst at one instant: the simulator's verdict for request n, and ours.
  common::FakeClock clock;
  TokenBucket bucket(limit.max_tokens(), limit.tokens_per_fill(), limit.fill_interval(), clock.Now());
  testing::SimRequest req;
  req.host = "orders";
  for (uint32_t n = 1; n <= 130; ++n) {
    auto sim =
        testing::TraceInbound(compiled, {18081, true, "spiffe://cluster.local/ns/shop/sa/frontend"}, req, n);
    INFO("request " << n);
    const bool passed = bucket.TryConsume(clock.Now());
    CHECK(passed == (sim.status != 429));
    if (!passed) {
      REQUIRE(sim.retry_after);
      bool found = false;
      for (const auto& [k, v] : limit.response_headers())
        found = found || (k == "retry-after" && v == *sim.retry_after);
      CHECK(found);
    }
  }
  // The plaintext chain of the same port (PERMISSIVE) carries the same
  // limit; the data path keeps one bucket per chain.
  REQUIRE(port->plaintext);
  REQUIRE(port->plaintext->filters.size() == 2);
  CHECK(port->plaintext->filters[0].rate_limit->BucketKey() == limit.BucketKey());
  CHECK(port->plaintext->name != chain.name);
}

TEST_CASE("local rate limit per route: a bucket for the tagged route's requests, like the simulator",
          "[proxy][ratelimit]") {
  auto compiled = CompileGolden("rate_limit", "orders-v2", "10.0.1.2");
  auto cfg = ProxyConfigOf(compiled);
  const InboundPort* port = cfg->Inbound(18082);
  REQUIRE(port != nullptr);
  REQUIRE(port->mtls);
  const InboundChain& chain = *port->mtls;
  // The workload's own limit, then the per-route filter with no bucket of its own.
  REQUIRE(chain.filters.size() == 2);
  REQUIRE(chain.filters[1].rate_limit);
  CHECK(chain.filters[1].name == "envoy.filters.http.local_ratelimit.route");
  CHECK_FALSE(chain.filters[1].rate_limit->has_bucket());
  // The route that carries the bucket matches the caller's tag.
  const VirtualHostEntry* vh = chain.routes->FindVirtualHost("orders-v2");
  REQUIRE(vh != nullptr);
  HeaderList tagged = {{"x-weft-route", "shop/checkout"}};
  const RouteEntry* route = RouteTable::FindRoute(*vh, {"orders-v2", "GET", "/checkout", &tagged});
  REQUIRE(route != nullptr);
  CHECK(route->name == "ratelimit|shop/checkout");
  auto it = route->rate_limits.find("envoy.filters.http.local_ratelimit.route");
  REQUIRE(it != route->rate_limits.end());
  const LocalRateLimitConfig& limit = *it->second;
  CHECK(limit.max_tokens() == 5);  // 5 per minute, no burst
  CHECK(limit.fill_interval() == milliseconds(60'000));
  CHECK(limit.enforced_percent() == 100);
  HeaderList untagged;
  const RouteEntry* plain = RouteTable::FindRoute(*vh, {"orders-v2", "GET", "/checkout", &untagged});
  REQUIRE(plain != nullptr);
  CHECK(plain->rate_limits.empty());

  // The simulator agrees: the 6th tagged request is refused by the route's
  // bucket; untagged requests only meet the workload's 120.
  testing::SimRequest req;
  req.host = "orders-v2";
  req.path = "/checkout";
  req.headers["x-weft-route"] = "shop/checkout";
  const testing::SimConnection peer{18082, true, "spiffe://cluster.local/ns/shop/sa/frontend"};
  CHECK(testing::TraceInbound(compiled, peer, req, 5).status == 200);
  auto sixth = testing::TraceInbound(compiled, peer, req, 6);
  CHECK(sixth.status == 429);
  CHECK(sixth.rate_limited_route == "ratelimit|shop/checkout");
  REQUIRE(sixth.retry_after);
  CHECK(*sixth.retry_after == "60");
  req.headers.clear();
  CHECK(testing::TraceInbound(compiled, peer, req, 6).status == 200);
}

TEST_CASE("local rate limit: defaults and configs weft-proxy refuses", "[proxy][ratelimit]") {
  envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit proto;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(R"pb(stat_prefix: "x"
                                                             token_bucket {
                                                               max_tokens: 5
                                                               fill_interval { seconds: 1 }
                                                             })pb",
                                                        &proto));
  auto plain = LocalRateLimitConfig::Create(proto);
  REQUIRE(plain.ok());
  CHECK((*plain)->has_bucket());
  CHECK((*plain)->enabled_percent() == 0);  // Envoy: no filter_enabled → off
  CHECK((*plain)->tokens_per_fill() == 1);
  CHECK((*plain)->status() == 429);
  CHECK_FALSE((*plain)->has_retry_after());

  REQUIRE(google::protobuf::TextFormat::ParseFromString(
      R"pb(stat_prefix: "x"
           token_bucket {
             max_tokens: 0
             fill_interval { nanos: 10000000 }
           }
           descriptors {
             entries { key: "k" value: "v" }
             token_bucket { max_tokens: 1 }
           }
           local_rate_limit_per_downstream_connection: true)pb",
      &proto));
  auto bad = LocalRateLimitConfig::Create(proto);
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK(msg.find("token_bucket.max_tokens: must be positive") != std::string::npos);
  CHECK(msg.find("token_bucket.fill_interval: must be at least 50ms") != std::string::npos);
  CHECK(msg.find("descriptors: not supported") != std::string::npos);
  CHECK(msg.find("local_rate_limit_per_downstream_connection: not supported") != std::string::npos);

  // Without a bucket: limits only through routes' per-filter configs.
  proto.Clear();
  proto.set_stat_prefix("per_route_only");
  auto per_route_only = LocalRateLimitConfig::Create(proto);
  REQUIRE(per_route_only.ok());
  CHECK_FALSE((*per_route_only)->has_bucket());
}

}  // namespace
}  // namespace weft::proxy
