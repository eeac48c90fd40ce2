// An endpoint-only change is compiled incrementally (policy/incremental.h):
// the publisher patches each configuration's last snapshot instead of
// validating and compiling the whole mesh. Compile() stays the definition,
// so every step of a sequence of changes must leave every node with exactly
// what a whole compile gives it.
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "server/config_publisher.h"
#include "server/snapshot_cache.h"

namespace weft::server {
namespace {

using discovery::MeshSnapshot;

discovery::ObjectMeta Meta(const std::string& name, std::map<std::string, std::string> labels = {}) {
  discovery::ObjectMeta m;
  m.name = name;
  m.namespace_ = "shop";
  m.labels = std::move(labels);
  m.source = {name + ".yaml", 0};
  return m;
}

discovery::Service SelectorService(const std::string& name) {
  discovery::Service s;
  s.meta = Meta(name);
  s.selector = {{"app", name}};
  s.ports.push_back({"http", 8080, 0, "", "TCP", ""});
  return s;
}

discovery::Workload MakeWorkload(const std::string& name, const std::string& app, const std::string& ip,
                                 uint32_t port, const std::string& sa) {
  discovery::Workload w;
  w.meta = Meta(name, {{"app", app}});
  w.address = ip;
  w.ports = {{"http", port}};
  w.service_account = sa;
  return w;
}

discovery::PolicyDocument Policy(const std::string& kind, const std::string& name, const std::string& spec) {
  discovery::PolicyDocument d;
  d.api_version = "weft.io/v1alpha1";
  d.kind = kind;
  d.meta = Meta(name);
  d.body = nlohmann::json::parse(R"({"apiVersion": "weft.io/v1alpha1", "kind": ")" + kind +
                                 R"(", "metadata": {"name": ")" + name +
                                 R"(", "namespace": "shop"}, "spec": )" + spec + "}");
  return d;
}

// Services a and b select Workloads; c is backed by an EndpointSlice that
// names Pod p-1. a has a TrafficPolicy, b an AuthorizationPolicy.
MeshSnapshot BaseMesh() {
  MeshSnapshot mesh;
  mesh.version = 1;
  for (const char* name : {"a", "b"}) mesh.services[std::string("shop/") + name] = SelectorService(name);
  discovery::Service c;
  c.meta = Meta("c");
  c.ports.push_back({"http", 9090, 0, "", "TCP", ""});
  mesh.services["shop/c"] = c;
  mesh.workloads["shop/a-1"] = MakeWorkload("a-1", "a", "10.0.0.1", 8080, "sa-a");
  mesh.workloads["shop/b-1"] = MakeWorkload("b-1", "b", "10.0.0.2", 8080, "sa-b");
  discovery::Pod pod;
  pod.meta = Meta("p-1", {{"app", "c"}});
  pod.pod_ip = "10.0.0.3";
  pod.service_account = "sa-c";
  pod.ready = true;
  mesh.pods["shop/p-1"] = pod;
  discovery::EndpointSlice slice;
  slice.meta = Meta("c-abc", {{"kubernetes.io/service-name", "c"}});
  slice.service_name = "c";
  slice.ports.push_back({"http", 9090, "TCP", ""});
  discovery::Endpoint ep;
  ep.addresses = {"10.0.0.3"};
  ep.target_pod = "p-1";
  slice.endpoints.push_back(ep);
  mesh.endpoint_slices["shop/c-abc"] = slice;
  mesh.policies["TrafficPolicy/shop/a-retries"] = Policy(
      "TrafficPolicy", "a-retries",
      R"({"targetRefs": [{"kind": "Service", "name": "a"}], "retries": {"attempts": 2, "retryOn": ["5xx"]}})");
  mesh.policies["AuthorizationPolicy/shop/b-callers"] =
      Policy("AuthorizationPolicy", "b-callers",
             R"({"selector": {"matchLabels": {"app": "b"}}, "action": "ALLOW",)"
             R"( "rules": [{"from": [{"principals": ["spiffe://cluster.local/ns/shop/sa/sa-a"]}]}]})");
  return mesh;
}

policy::ProxyIdentity Sidecar(const std::string& ip, const std::string& sa) {
  policy::ProxyIdentity id;
  id.kind = policy::ProxyIdentity::Kind::kSidecar;
  id.namespace_ = "shop";
  id.service_account = sa;
  id.ip = ip;
  return id;
}

// Each node's resources as (type, name) -> content hash.
using Held = std::map<std::pair<std::string, std::string>, std::string>;

struct Publisher {
  explicit Publisher(bool incremental) : publisher(cache, metrics, Options(incremental)) {}
  static policy::CompilerOptions Options(bool incremental) {
    policy::CompilerOptions o;
    o.incremental = incremental;
    return o;
  }
  Held Of(const std::string& node) {
    Held out;
    auto snapshot = cache.GetSnapshot(node);
    REQUIRE(snapshot != nullptr);
    for (const auto& [type, resources] : snapshot->types) {
      if (!resources) continue;
      for (const auto& [name, r] : resources->resources) out[{type, name}] = r.hash;
    }
    return out;
  }
  double Compiles(const std::string& mode) {
    return metrics.GetCounter("weft_compiles_total", "", {{"mode", mode}}).Value();
  }
  SnapshotCache cache;
  common::MetricsRegistry metrics;
  ConfigPublisher publisher;
};

TEST_CASE("endpoint-only changes compiled incrementally equal whole compiles, step after step",
          "[publisher][incremental]") {
  const std::map<std::string, policy::ProxyIdentity> nodes = {
      {"sidecar-a-1", Sidecar("10.0.0.1", "sa-a")}, {"sidecar-b-1", Sidecar("10.0.0.2", "sa-b")},
      {"sidecar-p-1", Sidecar("10.0.0.3", "sa-c")}, {"sidecar-elsewhere", Sidecar("10.0.0.9", "default")},
      {"proxyless", policy::ProxyIdentity{}},
  };
  Publisher incremental(true);
  Publisher whole(false);
  MeshSnapshot mesh = BaseMesh();
  for (Publisher* p : {&incremental, &whole}) {
    p->publisher.SetTrustBundle({"-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"});
    p->publisher.OnMeshSnapshot(std::make_shared<const MeshSnapshot>(mesh));
    for (const auto& [id, identity] : nodes) REQUIRE(p->publisher.ConnectNode(id, identity).ok());
  }

  struct Step {
    const char* what;
    std::function<void(MeshSnapshot&)> change;
    bool endpoints_only;
  };
  const std::vector<Step> steps = {
      {"a workload's port changes", [](MeshSnapshot& m) { m.workloads["shop/a-1"].ports["http"] = 8081; },
       true},
      {"a workload is added",
       [](MeshSnapshot& m) { m.workloads["shop/a-2"] = MakeWorkload("a-2", "a", "10.0.0.4", 8080, "sa-a"); },
       true},
      {"a workload's labels move it from b to a",
       [](MeshSnapshot& m) {
         m.workloads["shop/b-1"].meta.labels = {{"app", "a"}};
       },
       true},
      {"a workload runs as another service account (a's peer identities)",
       [](MeshSnapshot& m) { m.workloads["shop/a-2"].service_account = "sa-a2"; }, true},
      {"the Pod a sidecar runs in changes address",
       [](MeshSnapshot& m) {
         m.pods["shop/p-1"].pod_ip = "10.0.0.5";
         m.endpoint_slices["shop/c-abc"].endpoints[0].addresses = {"10.0.0.5"};
       },
       true},
      {"the Pod an EndpointSlice names runs as another service account",
       [](MeshSnapshot& m) { m.pods["shop/p-1"].service_account = "sa-c2"; }, true},
      {"an EndpointSlice gains an endpoint",
       [](MeshSnapshot& m) {
         discovery::Endpoint ep;
         ep.addresses = {"10.0.0.6"};
         m.endpoint_slices["shop/c-abc"].endpoints.push_back(ep);
       },
       true},
      {"the workload of a sidecar moves to its address",
       [](MeshSnapshot& m) { m.workloads["shop/b-1"].address = "10.0.0.9"; }, true},
      {"a workload is removed", [](MeshSnapshot& m) { m.workloads.erase("shop/a-1"); }, true},
      {"a Service changes (a whole compile)",
       [](MeshSnapshot& m) { m.services["shop/a"].ports[0].port = 8000; }, false},
      {"an endpoint change after it", [](MeshSnapshot& m) { m.workloads["shop/a-2"].ports["http"] = 8082; },
       true},
      {"a policy changes (a whole compile)",
       [](MeshSnapshot& m) { m.policies.erase("TrafficPolicy/shop/a-retries"); }, false},
      {"and endpoints again", [](MeshSnapshot& m) { m.workloads["shop/a-2"].ports["http"] = 8083; }, true},
  };
  for (const Step& step : steps) {
    INFO("step: " << step.what);
    step.change(mesh);
    mesh.version++;
    const double incremental_before = incremental.Compiles("incremental");
    std::map<std::string, Held> before;
    for (const auto& [id, identity] : nodes) before[id] = whole.Of(id);
    for (Publisher* p : {&incremental, &whole})
      p->publisher.OnMeshSnapshot(std::make_shared<const MeshSnapshot>(mesh));
    bool some_node_changed = false;
    for (const auto& [id, identity] : nodes) {
      INFO("node " << id);
      const Held expected = whole.Of(id);
      CHECK(incremental.Of(id) == expected);
      some_node_changed |= expected != before[id];
    }
    CHECK(some_node_changed);  // the step is a real change
    if (step.endpoints_only) {
      CHECK(incremental.Compiles("incremental") > incremental_before);
    } else {
      CHECK(incremental.Compiles("incremental") == incremental_before);
    }
  }
  CHECK(whole.Compiles("incremental") == 0);
}

}  // namespace
}  // namespace weft::server
