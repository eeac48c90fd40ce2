// KubePolicyVerdicts: what the validator's results become as Kubernetes
// status (docs/kubernetes.md): Accepted for the weft.io policies, and
// Gateway API RouteParentStatus (Accepted, ResolvedRefs) per Service parent
// of an HTTPRoute.
#include "server/kube_policy_status.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "policy/policy_set.h"

namespace weft::server {
namespace {

constexpr char kMesh[] = R"(
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {selector: {app: orders}, ports: [{name: http, port: 80}]}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: bad, namespace: shop}
spec: {targetRefs: [{kind: Service, name: orders}], retries: {attempts: 99}}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: dangling, namespace: shop}
spec: {targetRefs: [{kind: Service, name: nowhere}], timeout: 2s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary, namespace: shop}
spec:
  parentRefs:
  - {kind: Service, name: orders, port: 80}
  - {kind: Service, name: orders, port: 81}
  - {kind: Service, name: gone}
  - {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
  rules:
  - backendRefs: [{name: orders, port: 80, weight: 9}, {name: orders-v2, port: 80, weight: 1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: orders}]
  rules:
  - backendRefs: [{group: example.com, kind: Bucket, name: b, port: 80}]
)";

discovery::MeshSnapshot Mesh() {
  discovery::ParsedManifest parsed = discovery::ParseManifest(kMesh, "mesh.yaml");
  REQUIRE(parsed.errors.empty());
  discovery::MeshSnapshot mesh;
  for (auto& o : parsed.objects) discovery::AddToSnapshot(std::move(o), mesh);
  return mesh;
}

const discovery::KubeCondition& Condition(const std::vector<discovery::KubeCondition>& conditions,
                                          const std::string& type) {
  for (const auto& c : conditions) {
    if (c.type == type) return c;
  }
  FAIL("no condition " << type);
  return conditions.front();
}

TEST_CASE("weft policies: Accepted=False with the field path, or Accepted=True", "[kube][status]") {
  discovery::MeshSnapshot mesh = Mesh();
  auto verdicts = KubePolicyVerdicts(mesh, *policy::ValidatePolicies(mesh));
  const auto& bad = verdicts.at("TrafficPolicy/shop/bad");
  REQUIRE(bad.conditions.size() == 1);
  CHECK_FALSE(bad.conditions[0].status);
  CHECK(bad.conditions[0].reason == "Invalid");
  CHECK(absl::StrContains(bad.conditions[0].message, "spec.retries.attempts"));
  const auto& dangling = verdicts.at("TrafficPolicy/shop/dangling");
  CHECK(dangling.conditions[0].status);
  CHECK(dangling.conditions[0].reason == "Accepted");
  CHECK(absl::StrContains(dangling.conditions[0].message, "spec.targetRefs[0]"));
  CHECK_FALSE(bad.route);
}

TEST_CASE("HTTPRoutes: one parent status per Service parentRef, with Gateway API reasons", "[kube][status]") {
  discovery::MeshSnapshot mesh = Mesh();
  auto verdicts = KubePolicyVerdicts(mesh, *policy::ValidatePolicies(mesh));
  const auto& canary = verdicts.at("HTTPRoute/shop/canary");
  CHECK(canary.route);
  CHECK(canary.conditions.empty());
  REQUIRE(canary.route_parents.size() == 3);  // not the Gateway
  const auto& ok = canary.route_parents[0];
  CHECK(ok.parent_ref["port"] == 80);
  CHECK(Condition(ok.conditions, "Accepted").status);
  const auto& resolved = Condition(ok.conditions, "ResolvedRefs");
  CHECK_FALSE(resolved.status);
  CHECK(resolved.reason == "BackendNotFound");
  CHECK(absl::StrContains(resolved.message, "spec.rules[0].backendRefs[1]"));
  const auto& no_port = Condition(canary.route_parents[1].conditions, "Accepted");
  CHECK_FALSE(no_port.status);
  CHECK(no_port.reason == "NoMatchingParent");
  CHECK(absl::StrContains(no_port.message, "no port 81"));
  CHECK(Condition(canary.route_parents[2].conditions, "Accepted").reason == "NoMatchingParent");

  const auto& broken = verdicts.at("HTTPRoute/shop/broken");
  REQUIRE(broken.route_parents.size() == 1);
  CHECK(Condition(broken.route_parents[0].conditions, "Accepted").reason == "UnsupportedValue");
  CHECK(Condition(broken.route_parents[0].conditions, "ResolvedRefs").reason == "InvalidKind");
}

}  // namespace
}  // namespace weft::server
