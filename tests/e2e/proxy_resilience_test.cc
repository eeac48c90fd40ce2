// weft-proxy's resilience policies end to end (issue 8): weftd in file mode
// and echo apps behind real weft-proxy sidecars on their own loopback IPs —
// orders (127.0.0.2, the caller, with --access-log), payments-0 (127.0.0.3,
// healthy) and payments-1 (127.0.0.4, answers every request with 503) behind
// Service payments, inventory (127.0.0.5) and shadow (127.0.0.6, a mirror
// target). The test drives orders' sidecar as its app would (Host header)
// and asserts what a user relies on: the failing payments instance is
// ejected (calls then succeed) and comes back after the ejection time; a
// request beyond inventory's circuit breaker gets 503 with
// x-envoy-overloaded; injected aborts hit about their percentage and
// injected delays hold requests at least that long; mirrored requests reach
// shadow as "-shadow" copies without changing the answers; every request is
// one JSON access-log line; a W3C traceparent is generated or propagated
// and x-request-id kept.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

struct Workload : SidecarWorkload {
  Workload(std::string n, std::string svc, std::string addr, std::string account) : service(std::move(svc)) {
    name = std::move(n);
    ns = "shop";
    ip = std::move(addr);
    service_account = std::move(account);
  }
  std::string service;  // its Service (payments-0 and payments-1 share one)
  std::vector<std::string> app_flags;
};

struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  double seconds = 0;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class Mesh {
 public:
  Mesh() {
    orders.proxy_flags = {"--access-log=" + access_log};
    payments1.app_flags = {"--fail-every=1"};
    std::string manifests;
    std::vector<const SidecarWorkload*> one_per_account;  // a token each
    std::map<std::string, bool> services;
    for (Workload* w : all()) {
      if (services.emplace(w->service, true).second) {
        one_per_account.push_back(w);
        absl::StrAppend(&manifests, "---\napiVersion: v1\nkind: Service\nmetadata: {name: ", w->service,
                        ", namespace: shop}\nspec:\n  selector: {app: ", w->service,
                        "}\n  ports: [{name: http, port: 80}]\n");
      }
      absl::StrAppend(&manifests,
                      "---\napiVersion: weft.io/v1alpha1\nkind: Workload\nmetadata: {name: ", w->name,
                      ", namespace: shop, labels: {app: ", w->service, "}}\nspec: {address: ", w->ip,
                      ", ports: {http: ", w->inbound_port, "}, serviceAccount: ", w->service_account, "}\n");
    }
    base.Apply("mesh.yaml", manifests);
    REQUIRE(base.StartWeftd(one_per_account).ok());
    for (Workload* w : all()) {
      absl::Status s = base.StartEcho(*w, w->app_flags);
      INFO(s.message());
      REQUIRE(s.ok());
    }
  }

  std::vector<Workload*> all() { return {&orders, &payments0, &payments1, &inventory, &shadow}; }

  // orders' app calls http://host/path through its sidecar.
  Reply Call(const std::string& host, const std::string& path, const httplib::Headers& extra = {}) {
    httplib::Client client(orders.ip, orders.outbound_port);
    client.set_connection_timeout(5);
    client.set_read_timeout(15);
    httplib::Headers headers = extra;
    headers.emplace("Host", host);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = client.Get(path, headers);
    Reply out;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r) return out;
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    return out;
  }

  std::string Stats(const Workload& w) { return HttpGet(w.ip, w.admin_port, "/stats/prometheus").body; }
  // What the app of `w` counted (examples/echo: /echo-stats).
  nlohmann::json AppStats(const Workload& w) {
    return nlohmann::json::parse(HttpGet(w.ip, w.app_port, "/echo-stats").body, nullptr, false);
  }
  void Apply(const std::string& file, const std::string& yaml) { base.Apply(file, yaml); }

  SidecarMesh base{"weft-e2e-resilience-"};
  std::string access_log = base.dir + "/orders-access.log";
  Workload orders{"orders-0", "orders", "127.0.0.2", "orders"};
  Workload payments0{"payments-0", "payments", "127.0.0.3", "payments"};
  Workload payments1{"payments-1", "payments", "127.0.0.4", "payments"};
  Workload inventory{"inventory-0", "inventory", "127.0.0.5", "inventory"};
  Workload shadow{"shadow-0", "shadow", "127.0.0.6", "shadow"};
};

std::string Name(const Reply& r) {
  auto j = r.Json();
  return j.is_object() && j.contains("name") ? j["name"].get<std::string>() : "";
}

TEST_CASE("weft-proxy: outlier ejection, circuit breaking, faults, mirroring, access log and trace context",
          "[e2e][proxy][resilience]") {
  Mesh mesh;
  REQUIRE(WaitFor([&] { return mesh.Call("inventory", "/up").status == 200; }, absl::Seconds(15)));

  {
    // Without outlier detection the failing instance shows.
    std::map<std::string, int> seen;
    for (int i = 0; i < 20; ++i) seen[Name(mesh.Call("payments", "/pay"))]++;
    CHECK(seen["payments-1"] >= 4);
  }
  // A TrafficPolicy with outlier detection: 3 consecutive 5xx eject for 4 s × ejections.
  mesh.Apply("payments.yaml", R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: payments-outlier, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: payments}]
  outlierDetection: {consecutive5xx: 3, interval: 1s, baseEjectionTime: 4s, maxEjectionPercent: 50}
)");
  int streak = 0;
  REQUIRE(WaitFor(
      [&] {
        Reply r = mesh.Call("payments", "/pay");
        streak = r.status == 200 ? streak + 1 : 0;
        return streak >= 10;
      },
      absl::Seconds(20)));
  const auto ejected_at = std::chrono::steady_clock::now();
  {
    // Ejected: every call now goes to the healthy instance.
    std::map<int, int> codes;
    for (int i = 0; i < 10; ++i) codes[mesh.Call("payments", "/pay").status]++;
    CHECK(codes == std::map<int, int>{{200, 10}});
  }
  const std::string payments_cluster = "outbound|80||payments.shop.svc.cluster.local";
  CHECK(absl::StrContains(mesh.Stats(mesh.orders),
                          "weft_proxy_outlier_ejections_total{cluster=\"" + payments_cluster + "\"}"));
  CHECK(absl::StrContains(mesh.orders.proxy->Log(), "outlier detection: ejected 127.0.0.4:"));
  // It comes back after the ejection time (and fails again).
  Reply back;
  REQUIRE(WaitFor(
      [&] {
        back = mesh.Call("payments", "/pay");
        return back.status == 503;
      },
      absl::Seconds(20), absl::Milliseconds(200)));
  const double out_for = std::chrono::duration<double>(std::chrono::steady_clock::now() - ejected_at).count();
  CHECK(Name(back) == "payments-1");
  CHECK(out_for >= 2.5);  // ejected at most ~1.5 s before the streak was seen; base time 4 s
  mesh.Apply("payments.yaml", "");

  // Circuit breaking: one request at a time to inventory.
  mesh.Apply("inventory.yaml", R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: inventory-limits, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: inventory}]
  connectionLimits: {maxRequests: 1}
)");
  Reply overflow;
  REQUIRE(WaitFor(
      [&] {
        std::thread slow([&] { mesh.Call("inventory", "/slow?sleep_ms=1500"); });
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        overflow = mesh.Call("inventory", "/now");
        slow.join();
        return overflow.status == 503;
      },
      absl::Seconds(30)));
  CHECK(overflow.Header("x-envoy-overloaded") == "true");
  CHECK(absl::StrContains(overflow.body, "overflow"));
  const std::string inventory_cluster = "outbound|80||inventory.shop.svc.cluster.local";
  CHECK(absl::StrContains(mesh.Stats(mesh.orders), "weft_proxy_upstream_overflow_total{cluster=\"" +
                                                       inventory_cluster + "\",kind=\"requests\"}"));
  // One at a time still works.
  CHECK(mesh.Call("inventory", "/now").status == 200);

  // Fault injection: abort half the requests with 418.
  mesh.Apply("inventory.yaml", R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: inventory-faults, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: inventory}]
  fault: {abort: {status: 418, percent: 50}}
)");
  REQUIRE(WaitFor([&] { return mesh.Call("inventory", "/f").status == 418; }, absl::Seconds(15)));
  {
    std::map<int, int> codes;
    const int n = 200;
    for (int i = 0; i < n; ++i) codes[mesh.Call("inventory", "/f").status]++;
    INFO("418: " << codes[418] << ", 200: " << codes[200]);
    CHECK(codes[418] + codes[200] == n);
    // 50% of 200: mean 100, sd ~7; ±35 is 5 sd.
    CHECK(codes[418] >= 65);
    CHECK(codes[418] <= 135);
  }
  // A fixed delay on every request.
  mesh.Apply("inventory.yaml", R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: inventory-faults, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: inventory}]
  fault: {delay: {fixed: 600ms, percent: 100}}
)");
  REQUIRE(WaitFor([&] { return mesh.Call("inventory", "/d").seconds >= 0.6; }, absl::Seconds(15)));
  for (int i = 0; i < 5; ++i) {
    Reply d = mesh.Call("inventory", "/d");
    CHECK(d.status == 200);
    CHECK(d.seconds >= 0.6);
  }
  CHECK(absl::StrContains(mesh.Stats(mesh.orders), "weft_proxy_faults_injected_total{kind=\"abort\"}"));
  CHECK(absl::StrContains(mesh.Stats(mesh.orders), "weft_proxy_faults_injected_total{kind=\"delay\"}"));

  // Mirroring: every request to inventory is copied to shadow.
  mesh.Apply("inventory.yaml", R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: inventory-mirror, namespace: shop}
spec:
  parentRefs: [{kind: Service, group: "", name: inventory}]
  rules:
  - backendRefs: [{name: inventory, port: 80}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}}]
)");
  REQUIRE(WaitFor(
      [&] {
        Reply r = mesh.Call("inventory", "/mirrored");
        auto s = mesh.AppStats(mesh.shadow);
        return r.status == 200 && s.is_object() && s["requests"].get<int>() > 0;
      },
      absl::Seconds(15)));
  const int before = mesh.AppStats(mesh.shadow)["requests"].get<int>();
  for (int i = 0; i < 20; ++i) {
    Reply r = mesh.Call("inventory", "/mirrored");
    CHECK(r.status == 200);
    CHECK(Name(r) == "inventory-0");  // the answer is the primary's
  }
  REQUIRE(WaitFor([&] { return mesh.AppStats(mesh.shadow)["requests"].get<int>() >= before + 20; },
                  absl::Seconds(10)));
  auto shadow_stats = mesh.AppStats(mesh.shadow);
  CHECK(shadow_stats["hosts"].contains("inventory-shadow"));
  CHECK_FALSE(shadow_stats["hosts"].contains("inventory"));

  // Trace context: generated when absent, propagated unchanged when present; x-request-id kept.
  Reply fresh = mesh.Call("inventory", "/trace");
  const std::string generated = fresh.Json()["headers"].value("traceparent", "");
  CHECK(std::regex_match(generated, std::regex("00-[0-9a-f]{32}-[0-9a-f]{16}-01")));
  CHECK(generated.substr(3, 32) != std::string(32, '0'));
  const std::string given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  Reply traced = mesh.Call("inventory", "/trace", {{"traceparent", given}, {"x-request-id", "req-e2e-1"}});
  CHECK(traced.Json()["headers"].value("traceparent", "") == given);
  CHECK(traced.Json()["headers"].value("x-request-id", "") == "req-e2e-1");

  // The access log: one JSON line per request with its fields.
  std::vector<nlohmann::json> lines;
  REQUIRE(WaitFor(
      [&] {
        lines.clear();
        for (absl::string_view l : absl::StrSplit(ReadFile(mesh.access_log), '\n', absl::SkipEmpty())) {
          lines.push_back(nlohmann::json::parse(l, nullptr, false));
        }
        return !lines.empty() && lines.back().is_object() &&
               lines.back().value("x_request_id", "") == "req-e2e-1";
      },
      absl::Seconds(5)));
  bool saw_overflow = false, saw_fault = false;
  for (const auto& j : lines) {
    REQUIRE(j.is_object());
    for (const char* f : {"start_time", "method", "path", "response_code", "duration_ms", "upstream_host",
                          "source_identity", "destination_identity", "x_request_id", "trace_id"}) {
      CHECK(j.contains(f));
    }
    if (j["response_code"] == 503 && j["response_flags"] == "UO") saw_overflow = true;
    if (j["response_code"] == 418 && j["response_flags"] == "FI") saw_fault = true;
  }
  CHECK(saw_overflow);
  CHECK(saw_fault);
  const auto& last = lines.back();
  CHECK(last["method"] == "GET");
  CHECK(last["path"] == "/trace");
  CHECK(last["response_code"] == 200);
  CHECK(last["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(last["source_identity"] == "spiffe://cluster.local/ns/shop/sa/orders");
  CHECK(last["destination_identity"] == "spiffe://cluster.local/ns/shop/sa/inventory");
  CHECK(last["upstream_host"] == absl::StrCat(mesh.inventory.ip, ":", mesh.inventory.inbound_port));
  CHECK(std::regex_match(last["start_time"].get<std::string>(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

}  // namespace
}  // namespace weft::e2e
