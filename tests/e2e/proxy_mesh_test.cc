// weft-proxy end to end (issue 7): weftd in file mode with tokens.yaml and a
// temp --ca-dir, echo apps each behind a real weft-proxy on its own loopback
// IP (127.0.0.2 = A, 127.0.0.3/4 = B's workloads). What a user relies on:
// A reaches B by service name through its sidecar over mTLS (B's app sees
// A's SPIFFE ID in x-forwarded-client-cert); STRICT mTLS refuses a plaintext
// client at B's inbound; a second B workload gets traffic; an HTTPRoute
// change moves traffic without restarts; with weftd stopped traffic keeps
// flowing, and after its restart the proxies re-sync and follow changes.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {
namespace {

using nlohmann::json;

struct Workload {
  std::string ip;
  int app_port = PickFreePort();
  int inbound_port = PickFreePort();
  int outbound_port = PickFreePort();
  int admin_port = PickFreePort();
  SubprocessPtr app, proxy;
};

std::string Base() {
  return R"(apiVersion: v1
kind: Service
metadata: {name: a, namespace: shop}
spec:
  selector: {app: a}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop}
spec:
  selector: {app: b}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: b-canary, namespace: shop}
spec:
  selector: {app: b, track: canary}
  ports: [{name: http, port: 80}]
)";
}

std::string WorkloadYaml(const std::string& name, const std::string& app, const std::string& track,
                         const Workload& w, const std::string& sa) {
  return absl::StrCat("---\napiVersion: weft.io/v1alpha1\nkind: Workload\nmetadata: {name: ", name,
                      ", namespace: shop, labels: {app: ", app, ", track: ", track, "}}\nspec: {address: ", w.ip,
                      ", ports: {http: ", w.inbound_port, "}, serviceAccount: ", sa, "}\n");
}

std::string RouteYaml(const std::string& backend) {
  return absl::StrCat(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-split, namespace: shop}
spec:
  parentRefs: [{kind: Service, group: "", name: b, port: 80}]
  rules:
  - backendRefs: [{name: )", backend, ", port: 80, weight: 100}]\n");
}

struct Mesh {
  std::string dir = MakeTempDir("weft-e2e-proxy-");
  std::string config_dir = dir + "/config";
  std::string ca_dir = dir + "/ca";
  int xds_port = PickFreePort();
  int admin_port = PickFreePort();
  int weftd_starts = 0;
  SubprocessPtr weftd;
  Workload a{"127.0.0.2"}, b0{"127.0.0.3"}, b1{"127.0.0.4"};

  Mesh() {
    REQUIRE(mkdir(config_dir.c_str(), 0755) == 0);
    WriteFile(config_dir + "/tokens.yaml",
              "tokens:\n- {token: a-secret, namespace: shop, serviceAccount: a}\n"
              "- {token: b-secret, namespace: shop, serviceAccount: b}\n");
    WriteFile(dir + "/a.token", "a-secret\n");
    WriteFile(dir + "/b.token", "b-secret\n");
    WriteFile(config_dir + "/mesh.yaml", Base() + WorkloadYaml("a-0", "a", "stable", a, "a") +
                                             WorkloadYaml("b-0", "b", "stable", b0, "b"));
    StartWeftd();
    StartWorkload(a, "app-a", "a");
    StartWorkload(b0, "app-b-0", "b");
  }

  void StartWeftd() {
    weftd = Start({BinaryPath("weftd"), "--config-dir=" + config_dir, "--ca-dir=" + ca_dir,
                   absl::StrCat("--xds-addr=127.0.0.1:", xds_port), absl::StrCat("--admin-addr=127.0.0.1:", admin_port)},
                  absl::StrCat("weftd-", ++weftd_starts, ".log"));
    REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; }, absl::Seconds(15)));
  }

  void StartWorkload(Workload& w, const std::string& name, const std::string& sa) {
    w.app = Start({BinaryPath("echo-server"), absl::StrCat("--addr=", w.ip, ":", w.app_port), "--name=" + name,
                   absl::StrCat("--proxy=", w.ip, ":", w.outbound_port)},
                  name + ".log");
    // weftd by name, as a cluster's proxies reach weftd.weft-system.svc: the
    // sidecar's gRPC keeps only the native DNS resolver
    // (proxy/grpc_core_config.cc), and this proves it resolves.
    w.proxy = Start({BinaryPath("weft-proxy"), absl::StrCat("--xds=localhost:", xds_port), "--namespace=shop",
                     "--service-account=" + sa, "--token-file=" + dir + "/" + sa + ".token",
                     "--trust-bundle=" + ca_dir + "/root-cert.pem",
                     absl::StrCat("--outbound-addr=", w.ip, ":", w.outbound_port),
                     absl::StrCat("--inbound-addr=", w.ip, ":", w.inbound_port),
                     absl::StrCat("--admin-addr=", w.ip, ":", w.admin_port),
                     absl::StrCat("--app-addr=", w.ip, ":", w.app_port)},
                    name + "-proxy.log");
    REQUIRE(WaitFor([&] { return HttpGet(w.ip, w.admin_port, "/ready").status == 200; }, absl::Seconds(20)));
  }

  SubprocessPtr Start(std::vector<std::string> argv, const std::string& log) {
    REQUIRE(!argv[0].empty());
    auto p = std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{}, dir + "/" + log);
    REQUIRE(p->Start().ok());
    return p;
  }

  // App A calls `url` through its sidecar; the JSON B's app answered, or null.
  json Call(const std::string& url) {
    HttpResponse r = HttpGet(a.ip, a.app_port, "/call?url=" + url);
    if (r.status != 200) return nullptr;
    json j = json::parse(r.body, nullptr, false);
    return j.is_discarded() ? json(nullptr) : j;
  }

  std::map<std::string, int> Spread(int n) {
    std::map<std::string, int> names;
    for (int i = 0; i < n; ++i) {
      json j = Call("http://b.shop/spread");
      names[j.is_object() ? j["name"].get<std::string>() : "error"]++;
    }
    return names;
  }
};

TEST_CASE("weft-proxy: mTLS between sidecars, STRICT, scaling, route changes and a weftd outage", "[e2e][proxy]") {
  Mesh mesh;

  // A calls B by service name; B's app learns A's SPIFFE ID from its sidecar.
  json reply;
  REQUIRE(WaitFor([&] { return (reply = mesh.Call("http://b/hello")).is_object(); }, absl::Seconds(15)));
  CHECK(reply["name"] == "app-b-0");
  CHECK(reply["path"] == "/hello");
  CHECK(reply["headers"]["x-forwarded-client-cert"] ==
        "By=spiffe://cluster.local/ns/shop/sa/b;URI=spiffe://cluster.local/ns/shop/sa/a");
  // The FQDN with its port routes the same way.
  CHECK(mesh.Call("http://b.shop.svc.cluster.local:80/x")["name"] == "app-b-0");

  // PERMISSIVE (the default): a plaintext client reaches B's inbound, and no
  // identity is claimed for it.
  HttpResponse plain = HttpGet(mesh.b0.ip, mesh.b0.inbound_port, "/plain");
  REQUIRE(plain.status == 200);
  CHECK(json::parse(plain.body)["headers"].count("x-forwarded-client-cert") == 0);

  // STRICT: plaintext is refused; sidecar-to-sidecar mTLS still works.
  WriteFile(mesh.config_dir + "/mtls.yaml",
            "apiVersion: weft.io/v1alpha1\nkind: MTLSPolicy\nmetadata: {name: default, namespace: shop}\n"
            "spec: {mode: STRICT}\n");
  REQUIRE(WaitFor([&] { return HttpGet(mesh.b0.ip, mesh.b0.inbound_port, "/plain", absl::Seconds(2)).status == 0; },
                  absl::Seconds(15)));
  CHECK(mesh.Call("http://b/strict")["name"] == "app-b-0");

  // Scale B to two workloads: calls spread over both.
  mesh.StartWorkload(mesh.b1, "app-b-1", "b");
  WriteFile(mesh.config_dir + "/mesh.yaml", Base() + WorkloadYaml("a-0", "a", "stable", mesh.a, "a") +
                                                WorkloadYaml("b-0", "b", "stable", mesh.b0, "b") +
                                                WorkloadYaml("b-1", "b", "canary", mesh.b1, "b"));
  REQUIRE(WaitFor([&] { return mesh.Call("http://b/")["name"] == "app-b-1"; }, absl::Seconds(15)));
  auto spread = mesh.Spread(20);
  INFO("spread: " << json(spread).dump());
  CHECK(spread["app-b-0"] >= 5);
  CHECK(spread["app-b-1"] >= 5);
  CHECK(spread.count("error") == 0);

  // An HTTPRoute sends all of b's traffic to b-canary (only b-1), no restarts.
  WriteFile(mesh.config_dir + "/route.yaml", RouteYaml("b-canary"));
  REQUIRE(WaitFor([&] { return mesh.Spread(5) == std::map<std::string, int>{{"app-b-1", 5}}; }, absl::Seconds(15)));
  CHECK(mesh.Spread(10) == std::map<std::string, int>{{"app-b-1", 10}});

  // weftd stops: traffic keeps flowing on the last configuration.
  mesh.weftd->Stop();
  for (int i = 0; i < 10; ++i) CHECK(mesh.Call("http://b/outage")["name"] == "app-b-1");
  HttpResponse dump = HttpGet(mesh.a.ip, mesh.a.admin_port, "/config_dump");
  REQUIRE(dump.status == 200);
  CHECK(json::parse(dump.body)["xds"]["connected"] == false);

  // A change made while weftd is down is picked up when it comes back.
  WriteFile(mesh.config_dir + "/route.yaml", RouteYaml("b"));
  mesh.StartWeftd();
  REQUIRE(WaitFor([&] {
    HttpResponse r = HttpGet("127.0.0.1", mesh.admin_port, "/api/v1/proxies");
    if (r.status != 200) return false;
    // Every proxy is back and holds what weftd sent. (Not `status ==
    // SYNCED`: weftd reports a delta client that resumed with up-to-date
    // initial_resource_versions as STALE, since nothing needed sending.)
    json proxies = json::parse(r.body)["proxies"];
    int resynced = 0;
    for (const auto& p : proxies) {
      bool all = p["types"].size() >= 4;
      for (const auto& [type, t] : p["types"].items()) all = all && t["versionAcked"] == t["versionSent"];
      resynced += all;
    }
    return resynced == 3;
  }, absl::Seconds(30)));
  REQUIRE(WaitFor([&] {
    auto s = mesh.Spread(10);
    return s["app-b-0"] > 0 && s["app-b-1"] > 0;
  }, absl::Seconds(15)));
  HttpResponse stats = HttpGet(mesh.a.ip, mesh.a.admin_port, "/stats/prometheus");
  CHECK(absl::StrContains(stats.body, "weft_proxy_requests_total{cluster=\"outbound|80||b.shop.svc.cluster.local\",code=\"200\",direction=\"outbound\"}"));
  CHECK(absl::StrContains(stats.body, "weft_proxy_xds_reconnects_total"));
  HttpResponse b_stats = HttpGet(mesh.b0.ip, mesh.b0.admin_port, "/stats/prometheus");
  CHECK(absl::StrContains(b_stats.body, "weft_proxy_inbound_refused_total{transport=\"plaintext\"}"));
}

}  // namespace
}  // namespace weft::e2e
