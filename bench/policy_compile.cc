// bench/policy_compile: the compiler at scale. 1,000 services (10
// namespaces, 2 workloads each) and 100 policies (40 HTTPRoutes, 30
// TrafficPolicies, 20 AuthorizationPolicies, 10 RateLimitPolicies);
// validates once, then compiles for one sidecar (and one proxyless client)
// repeatedly and prints the time per compile. Target: < 10 ms per sidecar
// compile. Never a timed test; figures go to docs/policies.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "policy/compiler.h"
#include "policy/policy_set.h"
#include "policy/resource_types.h"

namespace {

using weft::discovery::MeshSnapshot;
using nlohmann::json;

void AddPolicy(MeshSnapshot& mesh, const std::string& kind, const std::string& api, const std::string& ns,
               const std::string& name, json spec) {
  weft::discovery::PolicyDocument doc;
  doc.api_version = api;
  doc.kind = kind;
  doc.meta.name = name;
  doc.meta.namespace_ = ns;
  doc.meta.source = {"bench.yaml", static_cast<int>(mesh.policies.size())};
  doc.body = json{{"apiVersion", api}, {"kind", kind}, {"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", spec}};
  mesh.policies[kind + "/" + ns + "/" + name] = std::move(doc);
}

MeshSnapshot BuildMesh() {
  MeshSnapshot mesh;
  mesh.version = 1;
  for (int i = 0; i < 1000; ++i) {
    const std::string ns = "ns" + std::to_string(i % 10);
    const std::string name = "svc" + std::to_string(i);
    weft::discovery::Service s;
    s.meta.name = name;
    s.meta.namespace_ = ns;
    s.meta.source = {"bench.yaml", i};
    s.cluster_ip = "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    s.selector = {{"app", name}};
    s.ports.push_back({"http", 8080, 0, "", "TCP", ""});
    mesh.services[ns + "/" + name] = s;
    for (int w = 0; w < 2; ++w) {
      weft::discovery::Workload wl;
      wl.meta.name = name + "-" + std::to_string(w);
      wl.meta.namespace_ = ns;
      wl.meta.labels = {{"app", name}};
      wl.address = "10.1." + std::to_string(i / 128) + "." + std::to_string((i % 128) * 2 + w);
      wl.ports = {{"http", 18080}};
      wl.service_account = name;
      mesh.workloads[ns + "/" + wl.meta.name] = wl;
    }
  }
  const std::string gw = "gateway.networking.k8s.io/v1", weft = "weft.io/v1alpha1";
  for (int i = 0; i < 40; ++i) {
    const std::string ns = "ns" + std::to_string(i % 10), svc = "svc" + std::to_string(i), other = "svc" + std::to_string(i + 10);
    AddPolicy(mesh, "HTTPRoute", gw, ns, "route" + std::to_string(i),
              {{"parentRefs", {{{"kind", "Service"}, {"group", ""}, {"name", svc}}}},
               {"rules",
                {{{"matches", {{{"headers", {{{"name", "x-canary"}, {"value", "true"}}}}}}},
                  {"backendRefs", {{{"name", other}, {"port", 8080}}}}},
                 {{"matches", {{{"path", {{"type", "PathPrefix"}, {"value", "/api"}}}}}},
                  {"backendRefs", {{{"name", svc}, {"port", 8080}, {"weight", 90}}, {{"name", other}, {"port", 8080}, {"weight", 10}}}},
                  {"timeouts", {{"request", "2s"}}}}}}});
  }
  for (int i = 0; i < 30; ++i) {
    const std::string ns = "ns" + std::to_string(i % 10);
    AddPolicy(mesh, "TrafficPolicy", weft, ns, "tp" + std::to_string(i),
              {{"targetRefs", {{{"kind", "Service"}, {"name", "svc" + std::to_string(100 + i)}}}},
               {"loadBalancer", {{"type", "LeastRequest"}}},
               {"connectionLimits", {{"maxConnections", 100}}},
               {"outlierDetection", {{"consecutive5xx", 5}, {"interval", "10s"}}},
               {"retries", {{"attempts", 3}, {"perTryTimeout", "500ms"}, {"retryOn", {"5xx", "reset"}}}},
               {"timeout", "2s"}});
  }
  for (int i = 0; i < 20; ++i) {
    const std::string ns = "ns" + std::to_string(i % 10);
    AddPolicy(mesh, "AuthorizationPolicy", weft, ns, "authz" + std::to_string(i),
              {{"selector", {{"matchLabels", {{"app", "svc" + std::to_string(i)}}}}},
               {"rules", {{{"from", {{{"namespaces", {ns, "ops"}}}}}, {"to", {{{"methods", {"GET", "POST"}}}}}}}}});
  }
  for (int i = 0; i < 10; ++i) {
    const std::string ns = "ns" + std::to_string(i % 10);
    AddPolicy(mesh, "RateLimitPolicy", weft, ns, "rl" + std::to_string(i),
              {{"targetRefs", {{{"kind", "Service"}, {"name", "svc" + std::to_string(i)}}}},
               {"local", {{"requests", 100}, {"unit", "second"}, {"burst", 20}}}});
  }
  return mesh;
}

template <typename F>
std::vector<double> TimeMs(int runs, F&& f) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

void Print(const char* what, const std::vector<double>& ms) {
  double sum = 0;
  for (double m : ms) sum += m;
  std::printf("%-44s runs=%3zu  min %7.2f ms  median %7.2f ms  mean %7.2f ms\n", what, ms.size(), ms.front(),
              ms[ms.size() / 2], sum / ms.size());
}

}  // namespace

int main() {
  MeshSnapshot mesh = BuildMesh();
  std::printf("mesh: %zu services, %zu workloads, %zu policies\n", mesh.services.size(), mesh.workloads.size(),
              mesh.policies.size());
  weft::policy::PolicySetConstSharedPtr set;
  Print("ValidatePolicies (+ shared clusters/EDS)", TimeMs(5, [&] { set = weft::policy::ValidatePolicies(mesh); }));
  size_t accepted = 0;
  for (const auto& [k, s] : set->statuses) accepted += s.accepted;
  std::printf("policies accepted: %zu/%zu\n", accepted, set->statuses.size());

  weft::policy::ProxyIdentity sidecar;
  sidecar.kind = weft::policy::ProxyIdentity::Kind::kSidecar;
  sidecar.namespace_ = "ns0";
  sidecar.service_account = "svc0";
  sidecar.ip = mesh.workloads.at("ns0/svc0-0").address;
  size_t resources = 0;
  Print("Compile, one sidecar (1,000 services)", TimeMs(50, [&] {
          auto out = weft::policy::Compile(mesh, *set, sidecar);
          resources = 0;
          for (const auto& [t, m] : out->resources) resources += m.size();
        }));
  std::printf("  resources per sidecar: %zu\n", resources);

  weft::policy::CompilerOptions unshared;
  unshared.precompile_shared = false;
  auto set_unshared = weft::policy::ValidatePolicies(mesh, unshared);
  Print("Compile, one sidecar, nothing precompiled", TimeMs(20, [&] { (void)weft::policy::Compile(mesh, *set_unshared, sidecar, unshared); }));

  weft::policy::ProxyIdentity proxyless;
  proxyless.namespace_ = "ns0";
  Print("Compile, one proxyless client", TimeMs(20, [&] { (void)weft::policy::Compile(mesh, *set, proxyless); }));
  return 0;
}
