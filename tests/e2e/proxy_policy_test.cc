// weft-proxy enforcing policies end to end (issue 8): weftd in file mode and
// echo apps behind real weft-proxy sidecars on their own loopback IPs —
// orders (127.0.0.2, SA orders), payments (127.0.0.3, SA payments, a flaky
// instance that fails every 3rd request) and other (127.0.0.4, SA other).
// The test drives the callers' sidecars directly as their apps would
// (http_proxy style, Host header) and asserts what a user relies on:
// retries hide the flaky instance, a slow upstream gets 504 within the route
// timeout, only orders' SPIFFE ID may call payments (403 for another service
// account), a DENY on a path wins over that ALLOW, a burst beyond the
// local rate limit gets 429 with retry-after, and so does a burst beyond a
// per-route limit (RateLimitPolicy on an HTTPRoute) on that route only.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

struct Reply {
  int status = 0;
  std::string body;
  std::string retry_after;
};

class Mesh : public SidecarMesh {
 public:
  Mesh() : SidecarMesh("weft-e2e-policy-") {
    Apply("mesh.yaml", ServiceManifests({&orders, &payments, &other}));
    REQUIRE(StartWeftd({&orders, &payments, &other}).ok());
    REQUIRE(StartEcho(orders, {}).ok());
    REQUIRE(StartEcho(payments, {"--fail-every=3"}).ok());
    REQUIRE(StartEcho(other, {}).ok());
  }

  // `from`'s app calls http://host/path through its sidecar.
  Reply Call(const SidecarWorkload& from, const std::string& host, const std::string& path) {
    httplib::Client client(from.ip, from.outbound_port);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    auto r = client.Get(path, httplib::Headers{{"Host", host}});
    if (!r) return {};
    return {r->status, r->body, r->get_header_value("retry-after")};
  }

  std::map<int, int> Codes(const SidecarWorkload& from, const std::string& host, const std::string& path,
                           int n) {
    std::map<int, int> codes;
    for (int i = 0; i < n; ++i) codes[Call(from, host, path).status]++;
    return codes;
  }

  std::string Stats(const SidecarWorkload& w) {
    return HttpGet(w.ip, w.admin_port, "/stats/prometheus").body;
  }

  SidecarWorkload orders{"orders", "shop", "127.0.0.2", "orders"};
  SidecarWorkload payments{"payments", "shop", "127.0.0.3", "payments"};
  SidecarWorkload other{"other", "shop", "127.0.0.4", "other"};
};

TEST_CASE("weft-proxy enforces retries, timeouts, authorization and rate limits", "[e2e][proxy][policy]") {
  Mesh mesh;
  REQUIRE(WaitFor([&] { return mesh.Call(mesh.orders, "other", "/up").status == 200; }, absl::Seconds(15)));

  // The flaky payments instance shows through without retries.
  auto flaky = mesh.Codes(mesh.orders, "payments", "/pay", 30);
  INFO("without retries: " << flaky[200] << " x 200, " << flaky[503] << " x 503");
  CHECK(flaky[503] >= 8);
  CHECK(flaky[200] + flaky[503] == 30);

  // Retries hide it; a slow request gets 504 once the route timeout is spent.
  mesh.Apply("traffic.yaml", R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: payments-resilience, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: payments}]
  retries: {attempts: 2, perTryTimeout: 400ms, retryOn: [5xx]}
  timeout: 1s
)");
  REQUIRE(WaitFor(
      [&] {
        return mesh.Codes(mesh.orders, "payments", "/pay", 6) == std::map<int, int>{{200, 6}};
      },
      absl::Seconds(15)));
  auto retried = mesh.Codes(mesh.orders, "payments", "/pay", 30);
  CHECK(retried == std::map<int, int>{{200, 30}});
  CHECK(absl::StrContains(
      mesh.Stats(mesh.orders),
      "weft_proxy_upstream_retries_total{cluster=\"outbound|80||payments.shop.svc.cluster.local\"}"));
  const auto t0 = std::chrono::steady_clock::now();
  Reply slow = mesh.Call(mesh.orders, "payments", "/slow?sleep_ms=3000");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(slow.status == 504);
  CHECK(seconds >= 0.9);
  CHECK(seconds < 2.5);

  // Only orders may call payments; a DENY on /admin/* wins over that ALLOW.
  mesh.Apply("authz.yaml", R"(apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: payments-callers, namespace: shop}
spec:
  selector: {matchLabels: {app: payments}}
  action: ALLOW
  rules:
  - from: [{principals: ["spiffe://cluster.local/ns/shop/sa/orders"]}]
---
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: payments-no-admin, namespace: shop}
spec:
  selector: {matchLabels: {app: payments}}
  action: DENY
  rules:
  - to: [{paths: ["/admin/*"]}]
)");
  REQUIRE(
      WaitFor([&] { return mesh.Call(mesh.other, "payments", "/pay").status == 403; }, absl::Seconds(15)));
  Reply denied = mesh.Call(mesh.other, "payments", "/pay");
  CHECK(denied.status == 403);
  CHECK(absl::StrContains(denied.body, "RBAC: access denied"));
  CHECK(mesh.Codes(mesh.other, "payments", "/pay", 5) == std::map<int, int>{{403, 5}});
  CHECK(mesh.Codes(mesh.orders, "payments", "/pay", 10) == std::map<int, int>{{200, 10}});
  CHECK(mesh.Call(mesh.orders, "payments", "/admin/refund").status == 403);
  CHECK(mesh.Call(mesh.orders, "payments", "/administrator").status == 200);
  const std::string payments_stats = mesh.Stats(mesh.payments);
  CHECK(absl::StrContains(payments_stats, "weft_proxy_rbac_denied_total{policy=\"none\"}"));
  CHECK(absl::StrContains(payments_stats,
                          "weft_proxy_rbac_denied_total{policy=\"shop/payments-no-admin/rules[0]\"}"));
  // Each denial is logged with its reason.
  const std::string log = mesh.payments.proxy->Log();
  CHECK(absl::StrContains(log, "RBAC denied GET /pay on port"));
  CHECK(absl::StrContains(log, "from spiffe://cluster.local/ns/shop/sa/other"));
  CHECK(absl::StrContains(log, "DENY policy shop/payments-no-admin/rules[0] matched"));

  // A burst beyond the local rate limit of `other` (3/minute + burst 2).
  mesh.Apply("ratelimit.yaml", R"(apiVersion: weft.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: other-limit, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: other}]
  local: {requests: 3, unit: minute, burst: 2}
)");
  Reply limited;
  int passed_before = 0;
  REQUIRE(WaitFor(
      [&] {
        limited = mesh.Call(mesh.orders, "other", "/burst");
        if (limited.status == 200) ++passed_before;
        return limited.status == 429;
      },
      absl::Seconds(15)));
  CHECK(passed_before >= 5);  // the bucket started full: 3 + 2 tokens
  CHECK(limited.retry_after == "60");
  auto burst = mesh.Codes(mesh.orders, "other", "/burst", 8);
  CHECK(burst == std::map<int, int>{{429, 8}});
  CHECK(absl::StrContains(mesh.Stats(mesh.other), "weft_proxy_ratelimited_total{chain=\"inbound|"));
  // Another caller shares the workload's bucket.
  CHECK(mesh.Call(mesh.payments, "other", "/burst").status == 429);

  // A per-route limit: orders-limited (/limited) gets 2 per minute on
  // orders' side; orders' other route stays unlimited.
  mesh.Apply("route-ratelimit.yaml", R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-limited, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /limited}}]
    backendRefs: [{name: orders, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-rest, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders}]
  rules:
  - backendRefs: [{name: orders, port: 80}]
---
apiVersion: weft.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: orders-limited-limit, namespace: shop}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: orders-limited}]
  local: {requests: 2, unit: minute}
)");
  int route_passed = 0;
  REQUIRE(WaitFor(
      [&] {
        limited = mesh.Call(mesh.payments, "orders", "/limited/item");
        if (limited.status == 200) ++route_passed;
        return limited.status == 429;
      },
      absl::Seconds(15)));
  CHECK(route_passed >= 2);  // the route's bucket started full
  CHECK(limited.retry_after == "60");
  CHECK(mesh.Codes(mesh.payments, "orders", "/limited/item", 4) == std::map<int, int>{{429, 4}});
  // The bucket is the route's at orders, whoever calls; other routes pass.
  CHECK(mesh.Call(mesh.orders, "orders", "/limited/x").status == 429);
  CHECK(mesh.Codes(mesh.payments, "orders", "/unlimited", 6) == std::map<int, int>{{200, 6}});
  CHECK(absl::StrContains(mesh.Stats(mesh.orders), "weft_proxy_route_ratelimited_total{chain=\"inbound|"));
  CHECK(absl::StrContains(mesh.orders.proxy->Log(), "rate limited by route ratelimit|shop/orders-limited"));
}

}  // namespace
}  // namespace weft::e2e
