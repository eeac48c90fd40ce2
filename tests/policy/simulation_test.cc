// Simulation tests: requests traced through compiled configuration (the
// xDS simulator in tests/testing), asserting what a user relies on — which
// backend gets the request, with which retries and timeouts, and whether
// the destination lets it in — without a proxy running.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "policy/compiler.h"
#include "tests/testing/xds_simulator.h"

namespace weft::policy {
namespace {

using testing::SimConnection;
using testing::SimRequest;
using testing::TraceInbound;
using testing::TraceOutbound;

const std::string kOrders = "outbound|8080||orders.shop.svc.cluster.local";
const std::string kOrdersV2 = "outbound|8080||orders-v2.shop.svc.cluster.local";

struct Compiled {
  discovery::MeshSnapshot mesh;
  PolicySetConstSharedPtr policies;
  ProxyResources Proxy(const std::string& ns, const std::string& sa, const std::string& ip) const {
    ProxyIdentity id;
    id.kind = ProxyIdentity::Kind::kSidecar;
    id.namespace_ = ns;
    id.service_account = sa;
    id.ip = ip;
    auto out = Compile(mesh, *policies, id);
    REQUIRE(out.ok());
    return *out;
  }
};

Compiled FromGolden(const std::string& name) {
  std::ifstream in(std::string(WEFT_SOURCE_DIR) + "/tests/policy/golden/" + name + "/input.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = discovery::ParseManifest(ss.str(), name);
  Compiled c;
  for (auto& o : parsed.objects) discovery::AddToSnapshot(std::move(o), c.mesh);
  c.policies = ValidatePolicies(c.mesh);
  return c;
}

SimRequest Req(const std::string& host, const std::string& path, const std::string& method = "GET",
               std::map<std::string, std::string> headers = {}) {
  SimRequest r;
  r.host = host;
  r.path = path;
  r.method = method;
  r.headers = std::move(headers);
  return r;
}

TEST_CASE("simulation: HTTPRoute matches pick the backend as Gateway API says", "[simulation]") {
  auto c = FromGolden("httproute_matching");
  auto frontend = c.Proxy("shop", "frontend", "10.0.0.5");
  struct Case {
    SimRequest request;
    std::string cluster;
  };
  // The cases of the Gateway API mesh conformance test MeshHTTPRouteMatching.
  std::vector<Case> cases = {
      {Req("orders:8080", "/"), kOrders},
      {Req("orders:8080", "/example"), kOrders},
      {Req("orders:8080", "/", "GET", {{"version", "one"}}), kOrders},
      {Req("orders:8080", "/v2"), kOrdersV2},
      {Req("orders:8080", "/v2/example"), kOrdersV2},
      {Req("orders:8080", "/", "GET", {{"version", "two"}}), kOrdersV2},
      {Req("orders:8080", "/v2/"), kOrdersV2},
      {Req("orders:8080", "/v2example"), kOrders},  // not a path-segment prefix
      {Req("orders:8080", "/foo/v2/example"), kOrders},
      // Every host form reaches the same virtual host.
      {Req("orders.shop.svc.cluster.local:8080", "/v2"), kOrdersV2},
      {Req("orders.shop", "/v2"), kOrdersV2},
      {Req("10.96.0.20:8080", "/v2"), kOrdersV2},
      // Regex path + method; query parameter match.
      {Req("orders:8080", "/items/42"), kOrders},
      {Req("orders:8080", "/mirror?debug=1"), kOrders},
  };
  for (const auto& tc : cases) {
    INFO(tc.request.host << tc.request.path);
    auto d = TraceOutbound(frontend, tc.request);
    CHECK(d.virtual_host == "orders.shop.svc.cluster.local:8080");
    REQUIRE(d.clusters.size() == 1);
    CHECK(d.clusters[0].first == tc.cluster);
  }
  // POST /items/1 does not match the GET-only rule: it falls to the catch-all.
  CHECK(TraceOutbound(frontend, Req("orders:8080", "/items/1", "POST")).route == "shop/orders-routes/rule0/0");
  CHECK(TraceOutbound(frontend, Req("orders:8080", "/mirror?debug=0")).route == "shop/orders-routes/rule0/0");
  // Unknown host: no virtual host, the proxy's pass-through applies.
  CHECK(TraceOutbound(frontend, Req("example.com", "/")).virtual_host.empty());
}

TEST_CASE("simulation: weighted splits, redirects, 500s and timeouts", "[simulation]") {
  auto c = FromGolden("httproute_matching");
  auto frontend = c.Proxy("shop", "frontend", "10.0.0.5");
  auto canary = TraceOutbound(frontend, Req("orders:8080", "/canary"));
  CHECK(canary.clusters == std::vector<std::pair<std::string, uint32_t>>{{kOrders, 90}, {kOrdersV2, 10}});
  auto redirect = TraceOutbound(frontend, Req("orders:8080", "/old/page"));
  CHECK(redirect.status == 301);
  CHECK(redirect.matched.redirect().host_redirect() == "example.org");
  CHECK(TraceOutbound(frontend, Req("orders:8080", "/nowhere")).status == 500);  // all weights zero
  auto missing = TraceOutbound(frontend, Req("orders:8080", "/missing"));
  CHECK(missing.clusters.size() == 2);  // the unknown backend's half gets 500
  CHECK(missing.matched.route().cluster_not_found_response_code() ==
        envoy::config::route::v3::RouteAction::INTERNAL_SERVER_ERROR);
  auto items = TraceOutbound(frontend, Req("orders:8080", "/items/7"));
  CHECK(items.timeout_ms == 500);
  CHECK(items.matched.request_headers_to_remove(0) == "X-Header-Remove");
}

TEST_CASE("simulation: consumer routes apply only to callers in their namespace", "[simulation]") {
  auto c = FromGolden("consumer_routes");
  auto web = TraceOutbound(c.Proxy("web", "web", "10.0.2.1"), Req("orders.shop", "/"));
  auto shop = TraceOutbound(c.Proxy("shop", "frontend", "10.0.0.5"), Req("orders.shop", "/"));
  CHECK(web.route == "web/orders-consumer/rule0/0");
  CHECK(web.clusters == std::vector<std::pair<std::string, uint32_t>>{{kOrders, 1}});
  CHECK(web.matched.response_headers_to_add(0).header().key() == "X-Header-Set");
  CHECK(shop.route == "shop/orders-producer/rule0/0");
  CHECK(shop.clusters.size() == 2);
  // The short name means a service of the caller's own namespace only.
  CHECK(TraceOutbound(c.Proxy("web", "web", "10.0.2.1"), Req("orders:8080", "/")).virtual_host.empty());
}

TEST_CASE("simulation: TrafficPolicy retries, timeouts and fault injection reach the route", "[simulation]") {
  auto c = FromGolden("traffic_policy");
  auto p = c.Proxy("shop", "frontend", "10.0.0.5");
  auto orders = TraceOutbound(p, Req("orders:8080", "/"));
  CHECK(orders.timeout_ms == 2000);
  CHECK(orders.matched.route().retry_policy().num_retries().value() == 3);
  CHECK(orders.matched.route().retry_policy().retry_on() == "5xx,gateway-error,connect-failure,reset");
  CHECK(orders.has_fault);
  // The HTTPRoute's own TrafficPolicy beats the namespace default.
  auto fe = TraceOutbound(p, Req("frontend", "/"));
  CHECK(fe.timeout_ms == 750);
  CHECK(fe.matched.route().retry_policy().retry_on() == "connect-failure");
  // The namespace default (RingHash on x-user) applies where nothing more specific does.
  auto v2 = TraceOutbound(p, Req("orders-v2:8080", "/"));
  CHECK(v2.timeout_ms == 60000);
  CHECK(v2.matched.route().hash_policy(0).header().header_name() == "x-user");
}

TEST_CASE("simulation: authorization DENY before ALLOW, principals, namespaces, paths, ports", "[simulation]") {
  auto c = FromGolden("authorization");
  auto orders = c.Proxy("shop", "orders", "10.0.1.1");
  auto call = [&](const std::string& principal, const std::string& method, const std::string& path,
                  uint32_t port = 18081) {
    SimConnection conn;
    conn.port = port;
    conn.tls = !principal.empty();
    conn.peer_principal = principal;
    return TraceInbound(orders, conn, Req("orders", path, method));
  };
  const std::string frontend = "spiffe://cluster.local/ns/shop/sa/frontend";
  CHECK(call(frontend, "POST", "/charge").status == 200);
  CHECK(call(frontend, "POST", "/charge").cluster == "inbound|18081||");
  CHECK(call(frontend, "POST", "/refund/7").status == 200);
  CHECK(call(frontend, "GET", "/charge").status == 403);                 // method
  CHECK(call(frontend, "POST", "/other").status == 403);                 // path
  CHECK(call("spiffe://cluster.local/ns/ops/sa/anyone", "POST", "/charge").status == 200);  // namespace
  CHECK(call("spiffe://cluster.local/ns/web/sa/web", "POST", "/charge").status == 403);
  CHECK(call("spiffe://cluster.local/ns/ops/sa/monitoring", "GET", "/healthz").status == 200);  // suffix
  CHECK(call("spiffe://cluster.local/ns/ops/sa/monitoring", "GET", "/admin/x").status == 403);  // DENY first
  CHECK(call(frontend, "POST", "/admin/x").denied_by.rfind("envoy.filters.http.rbac.deny", 0) == 0);
  CHECK(call("", "POST", "/charge").status == 403);  // plaintext has no principal
}

TEST_CASE("simulation: rate limit answers 429 with retry-after past the bucket", "[simulation]") {
  auto c = FromGolden("rate_limit");
  auto orders = c.Proxy("shop", "orders", "10.0.1.1");
  SimConnection conn{18081, true, "spiffe://cluster.local/ns/shop/sa/frontend"};
  CHECK(TraceInbound(orders, conn, Req("orders", "/"), 120).status == 200);
  auto limited = TraceInbound(orders, conn, Req("orders", "/"), 121);
  CHECK(limited.status == 429);
  CHECK(limited.retry_after == "1");
  // The frontend falls under the namespace default: 1000 per minute.
  auto fe = TraceInbound(c.Proxy("shop", "frontend", "10.0.0.5"), SimConnection{8080, false, ""}, Req("frontend", "/"));
  CHECK(fe.rate_limit_tokens == 1000u);
  CHECK(fe.retry_after == "60");
}

TEST_CASE("simulation: mTLS modes decide which connections the inbound side takes", "[simulation]") {
  auto c = FromGolden("mtls_modes");
  const SimRequest r = Req("x", "/");
  const std::string peer = "spiffe://cluster.local/ns/shop/sa/frontend";
  // PERMISSIVE (namespace shop beats the mesh-wide STRICT): both.
  auto v1 = c.Proxy("shop", "orders", "10.0.1.1");
  CHECK(TraceInbound(v1, {18081, true, peer}, r).connected);
  CHECK(TraceInbound(v1, {18081, false, ""}, r).connected);
  CHECK_FALSE(TraceInbound(v1, {18081, true, ""}, r).connected);  // TLS without a client certificate
  CHECK_FALSE(TraceInbound(v1, {9999, true, peer}, r).connected);  // not a port of the workload
  // DISABLE by selector: plaintext only.
  auto v2 = c.Proxy("shop", "orders-v2", "10.0.1.2");
  CHECK_FALSE(TraceInbound(v2, {18082, true, peer}, r).connected);
  CHECK(TraceInbound(v2, {18082, false, ""}, r).connected);
  // STRICT mesh-wide: mTLS only.
  auto audit = c.Proxy("ops", "audit", "10.0.3.1");
  CHECK(TraceInbound(audit, {9000, true, peer}, r).connected);
  CHECK_FALSE(TraceInbound(audit, {9000, false, ""}, r).connected);
}

TEST_CASE("simulation: proxyless clients get weights, header matches and deadlines", "[simulation]") {
  auto c = FromGolden("proxyless_httproute");
  ProxyIdentity client;
  client.namespace_ = "default";
  auto out = Compile(c.mesh, *c.policies, client);
  REQUIRE(out.ok());
  const std::string listener = "greeter.default.svc.cluster.local:50051";
  auto canary = testing::TraceProxyless(*out, listener,
                                        Req("greeter:50051", "/other.Service/M", "POST", {{"x-canary", "true"}}));
  CHECK(canary.clusters == std::vector<std::pair<std::string, uint32_t>>{
                               {"outbound|50051||greeter-canary.default.svc.cluster.local", 1}});
  auto split = testing::TraceProxyless(*out, listener, Req("greeter:50051", "/helloworld.Greeter/SayHello", "POST"));
  CHECK(split.clusters.size() == 2);
  // Gateway API precedence: the longer path prefix beats the header match.
  CHECK(testing::TraceProxyless(*out, listener, Req("greeter:50051", "/helloworld.Greeter/SayHello", "POST",
                                                    {{"x-canary", "true"}}))
            .clusters.size() == 2);
  CHECK(split.timeout_ms == 3000);  // as max_stream_duration, which gRPC reads
  CHECK(split.matched.route().retry_policy().retry_on() == "unavailable");  // 5xx is not a gRPC condition
  CHECK(testing::TraceProxyless(*out, listener, Req("greeter:50051", "/other.Service/M", "POST")).status == 404);
}

}  // namespace
}  // namespace weft::policy
