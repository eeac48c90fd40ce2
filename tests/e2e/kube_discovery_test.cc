// Kubernetes mode end to end: fake-kube-apiserver (a separate process), weftd
// --registry=kubernetes --kubeconfig pointing at it, two greeter backends and
// greeter-client on gRPC's own xDS resolver. The test changes the mesh the
// way an operator would, through the Kubernetes API (PUT/POST over HTTP),
// and watches which backend answers; it also breaks the API server's watch
// streams and checks that traffic and updates continue.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {
namespace {

using nlohmann::json;

json GreeterService() {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", "greeter"}, {"namespace", "default"}}},
          {"spec", {{"selector", {{"app", "greeter"}}}, {"ports", {{{"name", "grpc"}, {"port", 50051}}}}}}};
}

json GreeterWorkload(int port) {
  return {{"apiVersion", "weft.io/v1alpha1"},
          {"kind", "Workload"},
          {"metadata", {{"name", "greeter-0"}, {"namespace", "default"}, {"labels", {{"app", "greeter"}}}}},
          {"spec", {{"address", "127.0.0.1"}, {"ports", {{"grpc", port}}}, {"serviceAccount", "greeter"}}}};
}

struct KubeMesh {
  std::string dir = MakeTempDir("weft-e2e-kube-");
  int xds_port = PickFreePort();
  int tls_port = PickFreePort();
  int admin_port = PickFreePort();
  int port_a = PickFreePort();
  int port_b = PickFreePort();
  int api_port = 0;
  SubprocessPtr api, weftd, backend_a, backend_b;

  KubeMesh() {
    api = Start({BinaryPath("fake-kube-apiserver"), "--port=0", "--port-file=" + dir + "/api.port",
                 "--kubeconfig=" + dir + "/kubeconfig", "--token=weftd-token"},
                "apiserver.log");
    REQUIRE(WaitFor(
        [&] { return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir + "/api.port")), &api_port); },
        absl::Seconds(10)));
    REQUIRE(Api("POST", "/api/v1/namespaces/default/services", GreeterService()) == 201);
    REQUIRE(Api("POST", "/apis/weft.io/v1alpha1/namespaces/default/workloads", GreeterWorkload(port_a)) ==
            201);
    backend_a =
        Start({BinaryPath("greeter-server"), absl::StrCat("--addr=127.0.0.1:", port_a), "--name=backend-a"},
              "backend-a.log");
    backend_b =
        Start({BinaryPath("greeter-server"), absl::StrCat("--addr=127.0.0.1:", port_b), "--name=backend-b"},
              "backend-b.log");
    weftd = Start({BinaryPath("weftd"), "--registry=kubernetes", "--kubeconfig=" + dir + "/kubeconfig",
                   "--ca-dir=" + dir + "/ca", absl::StrCat("--xds-addr=127.0.0.1:", tls_port),
                   absl::StrCat("--xds-plaintext-addr=127.0.0.1:", xds_port),
                   absl::StrCat("--admin-addr=127.0.0.1:", admin_port)},
                  "weftd.log");
    REQUIRE(WaitForTcpPort("127.0.0.1", port_a, absl::Seconds(10)));
    REQUIRE(WaitForTcpPort("127.0.0.1", port_b, absl::Seconds(10)));
    REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; },
                    absl::Seconds(15)));
  }

  // A request to the fake API server, authenticated like kubectl would be.
  int Api(const std::string& method, const std::string& path, const json& body = json()) {
    httplib::Client client("127.0.0.1", api_port);
    httplib::Headers headers = {{"Authorization", "Bearer weftd-token"}};
    httplib::Result r = method == "POST" ? client.Post(path.c_str(), headers, body.dump(), "application/json")
                        : method == "PUT" ? client.Put(path.c_str(), headers, body.dump(), "application/json")
                                          : client.Post(path.c_str(), headers, "{}", "application/json");
    return r ? r->status : 0;
  }

  // GET of an object as JSON (null when it is not there).
  json Get(const std::string& path) {
    httplib::Client client("127.0.0.1", api_port);
    httplib::Result r = client.Get(path.c_str(), {{"Authorization", "Bearer weftd-token"}});
    if (!r || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  }

  SubprocessPtr Start(std::vector<std::string> argv, const std::string& log) {
    REQUIRE(!argv[0].empty());
    auto p =
        std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{}, dir + "/" + log);
    REQUIRE(p->Start().ok());
    return p;
  }

  SubprocessPtr StartClient(const std::string& log) {
    return Start({BinaryPath("greeter-client"), absl::StrCat("--xds-server=127.0.0.1:", xds_port),
                  "--count=0", "--interval=50ms", "--deadline=2s"},
                 log);
  }
};

TEST_CASE("weftd in Kubernetes mode routes a gRPC xDS client and follows an endpoint moved through the API",
          "[e2e][kube]") {
  KubeMesh mesh;
  SubprocessPtr client = mesh.StartClient("client.log");
  REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).size() >= 3; }, absl::Seconds(20)));
  for (const auto& b : GreeterBackends(client->Log())) CHECK(b == "backend-a");

  // Move the endpoint: update the Workload through the Kubernetes API.
  size_t before = GreeterBackends(client->Log()).size();
  REQUIRE(mesh.Api("PUT", "/apis/weft.io/v1alpha1/namespaces/default/workloads/greeter-0",
                   GreeterWorkload(mesh.port_b)) == 200);
  REQUIRE(WaitFor(
      [&] {
        auto backends = GreeterBackends(client->Log());
        return backends.size() > before && backends.back() == "backend-b";
      },
      absl::Seconds(20)));
  size_t moved_at = GreeterBackends(client->Log()).size();
  REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).size() >= moved_at + 5; }, absl::Seconds(10)));
  auto backends = GreeterBackends(client->Log());
  for (size_t i = moved_at; i < backends.size(); ++i) CHECK(backends[i] == "backend-b");

  // The API server drops every watch and forgets its history: weftd resumes
  // or relists, traffic keeps flowing, and the next move still arrives.
  REQUIRE(mesh.Api("POST", "/fake/drop-watches") == 200);
  REQUIRE(mesh.Api("POST", "/fake/compact") == 200);
  REQUIRE(mesh.Api("PUT", "/apis/weft.io/v1alpha1/namespaces/default/workloads/greeter-0",
                   GreeterWorkload(mesh.port_a)) == 200);
  REQUIRE(mesh.Api("POST", "/fake/expire-watches") == 200);
  before = GreeterBackends(client->Log()).size();
  REQUIRE(WaitFor(
      [&] {
        auto b = GreeterBackends(client->Log());
        return b.size() > before && b.back() == "backend-a";
      },
      absl::Seconds(20)));
  CHECK(client->Log().find("UNAVAILABLE") == std::string::npos);
  CHECK(client->Running());
  CHECK(mesh.weftd->Running());

  HttpResponse metrics = HttpGet("127.0.0.1", mesh.admin_port, "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(absl::StrContains(metrics.body, "weft_kube_watch_restarts_total{kind=\"Workload\"}"));
  CHECK(absl::StrContains(metrics.body, "weft_kube_events_total{kind=\"Workload\",type=\"MODIFIED\"}"));
  CHECK(absl::StrContains(metrics.body, "weft_kube_last_sync_timestamp_seconds{kind=\"Service\"}"));
  CHECK(absl::StrContains(mesh.weftd->Log(), "kubernetes mode"));
}

json TrafficPolicy(const std::string& name, int attempts) {
  return {{"apiVersion", "weft.io/v1alpha1"},
          {"kind", "TrafficPolicy"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"targetRefs", {{{"kind", "Service"}, {"name", "greeter"}}}},
            {"retries", {{"attempts", attempts}}}}}};
}

// The condition of `type` in `conditions`, or an empty object.
json FindCondition(const json& conditions, const std::string& type) {
  if (!conditions.is_array()) return json::object();
  for (const json& c : conditions) {
    if (c.is_object() && c.value("type", "") == type) return c;
  }
  return json::object();
}

json AcceptedCondition(const json& object) {
  if (!object.is_object() || !object.contains("status") || !object["status"].is_object())
    return json::object();
  return FindCondition(object["status"].value("conditions", json()), "Accepted");
}

// status.parents entries of `controller`, by parentRef name.
std::map<std::string, json> RouteParents(const json& route, const std::string& controller) {
  std::map<std::string, json> out;
  if (!route.is_object() || !route.contains("status") || !route["status"].contains("parents")) return out;
  for (const json& p : route["status"]["parents"]) {
    if (p.value("controllerName", "") == controller) out[p["parentRef"].value("name", "")] = p;
  }
  return out;
}

double MetricValue(const std::string& metrics, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (!absl::StartsWith(line, name + " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
  }
  return 0;
}

TEST_CASE("weftd writes Accepted conditions for weft policies and Gateway API status for HTTPRoutes",
          "[e2e][kube][status]") {
  KubeMesh mesh;
  const std::string policies = "/apis/weft.io/v1alpha1/namespaces/default/trafficpolicies";
  const std::string routes = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes";
  // Decodes fine, but the validator refuses it: attempts is at most 10.
  REQUIRE(mesh.Api("POST", policies, TrafficPolicy("bad", 99)) == 201);
  REQUIRE(mesh.Api("POST", policies, TrafficPolicy("good", 2)) == 201);

  json bad;
  REQUIRE(WaitFor(
      [&] {
        bad = mesh.Get(policies + "/bad");
        return AcceptedCondition(bad).value("status", "") == "False";
      },
      absl::Seconds(20)));
  json condition = AcceptedCondition(bad);
  INFO(condition.dump());
  CHECK(condition["reason"] == "Invalid");
  CHECK(absl::StrContains(condition.value("message", ""), "spec.retries.attempts"));
  CHECK(condition["observedGeneration"] == bad["metadata"]["generation"]);
  CHECK(!condition.value("lastTransitionTime", "").empty());
  REQUIRE(
      WaitFor([&] { return AcceptedCondition(mesh.Get(policies + "/good")).value("status", "") == "True"; },
              absl::Seconds(20)));
  CHECK(AcceptedCondition(mesh.Get(policies + "/good"))["reason"] == "Accepted");

  // A route with a Service parent, a missing Service parent and a Gateway
  // parent (another controller's), one backend that exists and one that
  // does not.
  json route = {{"apiVersion", "gateway.networking.k8s.io/v1"},
                {"kind", "HTTPRoute"},
                {"metadata", {{"name", "greeter-route"}, {"namespace", "default"}}},
                {"spec",
                 {{"parentRefs",
                   {{{"group", ""}, {"kind", "Service"}, {"name", "greeter"}, {"port", 50051}},
                    {{"group", ""}, {"kind", "Service"}, {"name", "missing"}},
                    {{"group", "gateway.networking.k8s.io"}, {"kind", "Gateway"}, {"name", "gw"}}}},
                  {"rules",
                   {{{"backendRefs",
                      {{{"name", "greeter"}, {"port", 50051}, {"weight", 90}},
                       {{"name", "greeter-canary"}, {"port", 50051}, {"weight", 10}}}}}}}}}};
  REQUIRE(mesh.Api("POST", routes, route) == 201);
  std::map<std::string, json> parents;
  REQUIRE(WaitFor(
      [&] {
        parents = RouteParents(mesh.Get(routes + "/greeter-route"), "weft.io/mesh-controller");
        return parents.size() == 2;
      },
      absl::Seconds(20)));
  INFO(json(parents).dump());
  CHECK(parents["greeter"]["parentRef"] == route["spec"]["parentRefs"][0]);
  CHECK(FindCondition(parents["greeter"]["conditions"], "Accepted")["status"] == "True");
  json resolved = FindCondition(parents["greeter"]["conditions"], "ResolvedRefs");
  CHECK(resolved["status"] == "False");
  CHECK(resolved["reason"] == "BackendNotFound");
  CHECK(absl::StrContains(resolved.value("message", ""), "spec.rules[0].backendRefs[1]"));
  json missing = FindCondition(parents["missing"]["conditions"], "Accepted");
  CHECK(missing["status"] == "False");
  CHECK(missing["reason"] == "NoMatchingParent");
  CHECK(missing["observedGeneration"] == 1);

  // Another controller's entry is left alone.
  json current = mesh.Get(routes + "/greeter-route");
  json other_condition = {{"type", "Accepted"},      {"status", "True"},
                          {"reason", "Accepted"},    {"message", ""},
                          {"observedGeneration", 1}, {"lastTransitionTime", "2026-01-01T00:00:00Z"}};
  json other = json::object();
  other["parentRef"] = route["spec"]["parentRefs"][2];
  other["controllerName"] = "example.com/gateway-controller";
  other["conditions"] = json::array({other_condition});
  current["status"]["parents"].push_back(other);
  REQUIRE(mesh.Api("PUT", routes + "/greeter-route/status", current) == 200);

  // The canary backend appears: ResolvedRefs turns True without a new
  // generation of the route.
  json canary = GreeterService();
  canary["metadata"]["name"] = "greeter-canary";
  REQUIRE(mesh.Api("POST", "/api/v1/namespaces/default/services", canary) == 201);
  REQUIRE(WaitFor(
      [&] {
        parents = RouteParents(mesh.Get(routes + "/greeter-route"), "weft.io/mesh-controller");
        return FindCondition(parents["greeter"]["conditions"], "ResolvedRefs").value("status", "") == "True";
      },
      absl::Seconds(20)));
  CHECK(FindCondition(parents["greeter"]["conditions"], "ResolvedRefs")["reason"] == "ResolvedRefs");
  CHECK(RouteParents(mesh.Get(routes + "/greeter-route"), "example.com/gateway-controller").size() == 1);

  // Fixing the policy: a new generation, Accepted=True for it.
  REQUIRE(mesh.Api("PUT", policies + "/bad", TrafficPolicy("bad", 3)) == 200);
  REQUIRE(WaitFor(
      [&] {
        bad = mesh.Get(policies + "/bad");
        return AcceptedCondition(bad).value("status", "") == "True";
      },
      absl::Seconds(20)));
  CHECK(AcceptedCondition(bad)["observedGeneration"] == 2);
  CHECK(bad["metadata"]["generation"] == 2);

  // Settled: no more status writes (no write storm) while nothing changes.
  auto writes = [&] {
    return MetricValue(HttpGet("127.0.0.1", mesh.admin_port, "/metrics").body,
                       "weft_kube_status_writes_total");
  };
  std::string versions;
  auto resource_versions = [&] {
    return absl::StrCat(mesh.Get(policies + "/bad")["metadata"].value("resourceVersion", ""), ",",
                        mesh.Get(policies + "/good")["metadata"].value("resourceVersion", ""), ",",
                        mesh.Get(routes + "/greeter-route")["metadata"].value("resourceVersion", ""));
  };
  const double settled = writes();
  versions = resource_versions();
  CHECK(settled >= 5);  // bad (2), good, the route (2)
  CHECK(settled <= 8);
  absl::SleepFor(absl::Seconds(3));
  CHECK(writes() == settled);
  CHECK(resource_versions() == versions);
  CHECK(MetricValue(HttpGet("127.0.0.1", mesh.admin_port, "/metrics").body,
                    "weft_kube_status_write_errors_total") == 0);
}

TEST_CASE("weftd refuses a broken kubeconfig with one clear line", "[e2e][kube][flags]") {
  std::string dir = MakeTempDir("weft-e2e-kubeflags-");
  WriteFile(dir + "/insecure",
            "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
            "clusters: [{name: k, cluster: {server: 'https://x', insecure-skip-tls-verify: true}}]\n"
            "users: [{name: u, user: {}}]\n");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"--registry=kubernetes", "--kubeconfig=" + dir + "/missing"}, "--kubeconfig"},
      {{"--registry=kubernetes", "--kubeconfig=" + dir + "/insecure"}, "insecure-skip-tls-verify"},
      {{"--registry=kubernetes", "--kubeconfig=" + dir + "/insecure", "--namespace-selector=x"}, "insecure"},
      {{"--registry=file", "--config-dir=" + dir, "--namespace-selector=a=b"}, "--namespace-selector"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> argv = {BinaryPath("weftd"), "--ca-dir=" + dir + "/ca",
                                     absl::StrCat("--xds-addr=127.0.0.1:", PickFreePort())};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    Subprocess p(argv, {}, dir + "/case" + std::to_string(i++) + ".log");
    REQUIRE(p.Start().ok());
    REQUIRE(p.Wait(absl::Seconds(10)));
    INFO(p.Log());
    CHECK(p.ExitCode().value_or(0) != 0);
    CHECK(absl::StrContains(p.Log(), c.expect));
    std::string log = p.Log();
    while (!log.empty() && log.back() == '\n') log.pop_back();
    CHECK(std::count(log.begin(), log.end(), '\n') == 0);
  }
}

}  // namespace
}  // namespace weft::e2e
