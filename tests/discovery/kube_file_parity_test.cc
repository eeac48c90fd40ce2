// The same manifests in file mode and in Kubernetes mode (applied to the
// fake API server) give the same MeshSnapshot content and compile to the
// same xDS (DESIGN.md §4: "the same YAML in both"). What legitimately
// differs is what the API server adds (uid, resourceVersion,
// creationTimestamp, generation, status) and where an object came from
// (SourceRef); the comparison clears exactly those.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "discovery/kube_registry.h"
#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "discovery/yaml_to_json.h"
#include "policy/compiler.h"
#include "tests/fake_kube/kube_test_support.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The manifests: the compiler's golden mesh plus the kinds it lacks.
std::string Manifests() {
  return R"(apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
)" + ReadFile(std::string(WEFT_SOURCE_DIR) + "/tests/policy/testdata/shop_mesh.yaml") +
         R"(
---
apiVersion: v1
kind: Pod
metadata: {name: orders-abc, namespace: shop, labels: {app: orders}}
spec: {serviceAccountName: orders}
status: {podIP: 10.1.2.3, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: orders-resilience, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: orders}]
  timeout: 2s
  retries: {attempts: 3, perTryTimeout: 500ms}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-canary, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: orders}]
  rules:
  - backendRefs: [{name: orders, port: 8080, weight: 90}]
---
apiVersion: weft.io/v1alpha1
kind: MTLSPolicy
metadata: {name: default, namespace: kube-system}
spec: {mode: STRICT}
)";
}

void ClearServerFields(ObjectMeta& meta) {
  meta.source = SourceRef{};
  meta.resource_version.clear();
  meta.generation = 0;
}

// Removes what the API server adds and where objects came from.
MeshSnapshot Normalized(const MeshSnapshot& in) {
  MeshSnapshot s = in;
  s.version = 0;
  for (auto& [k, o] : s.services) ClearServerFields(o.meta);
  for (auto& [k, o] : s.endpoint_slices) ClearServerFields(o.meta);
  for (auto& [k, o] : s.workloads) ClearServerFields(o.meta);
  for (auto& [k, o] : s.pods) ClearServerFields(o.meta);
  for (auto& [k, o] : s.namespaces) ClearServerFields(o.meta);
  for (auto& [k, o] : s.policies) {
    ClearServerFields(o.meta);
    o.body.erase("status");
    for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "generation"}) o.body["metadata"].erase(f);
  }
  return s;
}

TEST_CASE("file mode and Kubernetes mode give the same snapshot and the same xDS", "[kube][parity]") {
  const std::string text = Manifests();
  ParsedManifest parsed = ParseManifest(text, "mesh.yaml");
  REQUIRE(parsed.errors.empty());
  MeshSnapshot file_mode;
  for (auto& o : parsed.objects) AddToSnapshot(std::move(o), file_mode);
  REQUIRE(file_mode.services.size() >= 2);
  REQUIRE(file_mode.policies.size() == 3);

  fake_kube::FakeApiServer server;
  REQUIRE(server.Start().ok());
  YamlStream docs = ParseYamlStream(text);
  REQUIRE(!docs.error);
  for (const json& doc : docs.documents) {
    if (doc.is_null()) continue;
    auto applied = server.Apply(doc);
    INFO(doc.dump());
    REQUIRE(applied.ok());
  }
  auto client = fake_kube::ClientFor(server);
  common::MetricsRegistry metrics;
  KubeRegistryOptions options;
  options.quiet_period = std::chrono::milliseconds(10);
  KubeRegistry registry(*client, metrics, options);
  REQUIRE(registry.Run([](MeshSnapshotConstSharedPtr) {}).ok());
  MeshSnapshotConstSharedPtr kube_mode = registry.Current();
  registry.Stop();

  MeshSnapshot a = Normalized(file_mode), b = Normalized(*kube_mode);
  CHECK(a.services.size() == b.services.size());
  CHECK(a.endpoint_slices.size() == b.endpoint_slices.size());
  CHECK(a.workloads.size() == b.workloads.size());
  CHECK(a.pods.size() == b.pods.size());
  CHECK(a.namespaces.size() == b.namespaces.size());
  CHECK(a.policies.size() == b.policies.size());
  for (const auto& [key, p] : a.policies) {
    INFO(key);
    REQUIRE(b.policies.count(key) == 1);
    CHECK(p.body.dump() == b.policies.at(key).body.dump());
  }
  CHECK(SameContent(a, b));

  // Identical compiled xDS for several callers: every resource, byte for
  // byte (only the source map differs: "mesh.yaml#3" versus "kubernetes").
  for (const auto& [ns, sa] : std::vector<std::pair<std::string, std::string>>{
           {"default", "default"}, {"shop", "orders"}, {"kube-system", "default"}}) {
    policy::ProxyIdentity proxy;
    proxy.namespace_ = ns;
    proxy.service_account = sa;
    auto from_files = policy::Compile(file_mode, policy::PolicySet{}, proxy);
    auto from_kube = policy::Compile(*kube_mode, policy::PolicySet{}, proxy);
    REQUIRE(from_files.ok());
    REQUIRE(from_kube.ok());
    REQUIRE(from_files->resources.size() == from_kube->resources.size());
    size_t compared = 0;
    for (const auto& [type, by_name] : from_files->resources) {
      INFO(type);
      REQUIRE(from_kube->resources.count(type) == 1);
      const auto& other = from_kube->resources.at(type);
      REQUIRE(by_name.size() == other.size());
      for (const auto& [name, resource] : by_name) {
        INFO(name);
        REQUIRE(other.count(name) == 1);
        CHECK(resource.hash == other.at(name).hash);
        CHECK(resource.body->SerializeAsString() == other.at(name).body->SerializeAsString());
        ++compared;
      }
    }
    CHECK(compared > 0);
  }
}

}  // namespace
}  // namespace weft::discovery
