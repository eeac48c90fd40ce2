#include <catch2/catch.hpp>

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "policy/duration.h"
#include "policy/policy_set.h"

namespace weft::policy {
namespace {

discovery::MeshSnapshot Mesh(const std::string& yaml) {
  auto parsed = discovery::ParseManifest(yaml, "test.yaml");
  REQUIRE(parsed.errors.empty());
  discovery::MeshSnapshot mesh;
  for (auto& o : parsed.objects) discovery::AddToSnapshot(std::move(o), mesh);
  return mesh;
}

std::vector<std::string> Errors(const PolicySet& set, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& e : set.statuses.at(key).errors) out.push_back(e.field + ": " + e.reason);
  return out;
}

TEST_CASE("durations are Kubernetes-style strings", "[validation]") {
  CHECK(ParseDurationMs("500ms") == 500);
  CHECK(ParseDurationMs("2s") == 2000);
  CHECK(ParseDurationMs("1m30s") == 90000);
  CHECK(ParseDurationMs("1h") == 3600000);
  CHECK(ParseDurationMs("0s") == 0);
  CHECK_FALSE(ParseDurationMs("2"));
  CHECK_FALSE(ParseDurationMs("1.5s"));
  CHECK_FALSE(ParseDurationMs("-1s"));
  CHECK_FALSE(ParseDurationMs("soon"));
  CHECK_FALSE(ParseDurationMs("1s1s1s1s1s"));
}

TEST_CASE("a valid policy of every kind is accepted and typed", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: tp, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: orders}]
  loadBalancer: {type: RingHash, hashOn: {header: X-User}}
  connectionLimits: {maxConnections: 100, maxPendingRequests: 50, maxRequests: 200, maxRetries: 3}
  outlierDetection: {consecutive5xx: 5, consecutiveGatewayErrors: 3, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  retries: {attempts: 3, perTryTimeout: 500ms, retryOn: [5xx, gateway-error, connect-failure, reset]}
  timeout: 2s
  fault: {delay: {fixed: 100ms, percent: 10}, abort: {status: 503, percent: 5}}
---
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ap, namespace: shop}
spec:
  selector: {matchLabels: {app: payments}}
  action: DENY
  rules:
  - from: [{principals: ["spiffe://cluster.local/ns/shop/sa/orders", "*/sa/x"]}, {namespaces: [ops, "team-*"]}]
    to: [{methods: [POST], paths: ["/charge", "/refund/*", "*.js"], ports: [8080]}]
---
apiVersion: weft.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: rl, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: inventory}]
  local: {requests: 100, unit: minute, burst: 20}
---
apiVersion: weft.io/v1alpha1
kind: MTLSPolicy
metadata: {name: default, namespace: weft-system}
spec: {mode: STRICT}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{kind: Service, group: "", name: orders, port: 8080}, {name: some-gateway}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2/}, headers: [{name: Version, value: two}], queryParams: [{name: q, type: RegularExpression, value: "a.*"}], method: GET}]
    backendRefs: [{name: orders, port: 8080, weight: 3}]
    timeouts: {request: 2s, backendRequest: 1s}
)");
  auto set = ValidatePolicies(mesh);
  for (const auto& [key, status] : set->statuses) {
    INFO(key);
    CHECK(status.accepted);
    CHECK(status.errors.empty());
  }
  REQUIRE(set->traffic_policies.size() == 1);
  const auto& tp = set->traffic_policies[0];
  CHECK(tp.load_balancer == LoadBalancerType::kRingHash);
  CHECK(tp.hash_header == "x-user");
  CHECK(tp.connection_limits->max_pending_requests == 50u);
  CHECK(tp.outlier_detection->base_ejection_time_ms == 30000);
  CHECK(tp.retries->attempts == 3u);
  CHECK(tp.retries->per_try_timeout_ms == 500);
  CHECK(tp.timeout_ms == 2000);
  CHECK(tp.fault->abort_status == 503u);
  CHECK(tp.fault->delay_percent == 10u);
  REQUIRE(set->authorization_policies.size() == 1);
  CHECK(set->authorization_policies[0].action == AuthorizationAction::kDeny);
  CHECK(set->authorization_policies[0].rules[0].from.size() == 2);
  REQUIRE(set->rate_limit_policies.size() == 1);
  CHECK(set->rate_limit_policies[0].unit_seconds == 60);
  CHECK(set->rate_limit_policies[0].burst == 20u);
  REQUIRE(set->mtls_policies.size() == 1);
  CHECK(set->mtls_policies[0].mode == MtlsMode::kStrict);
  REQUIRE(set->http_routes.size() == 1);
  const auto& route = set->http_routes[0];
  REQUIRE(route.parents.size() == 1);  // the Gateway parent is not the mesh's
  CHECK(route.parents[0].port == 8080u);
  CHECK(route.rules[0].matches[0].headers[0].name == "version");  // header names are case-insensitive
  CHECK(route.rules[0].backends[0].weight == 3u);
  CHECK(route.rules[0].backend_request_timeout_ms == 1000);
  // References that do not resolve are warnings, not errors.
  CHECK_FALSE(set->statuses.at("HTTPRoute/shop/r").warnings.empty());
}

TEST_CASE("every error of an object is reported with its field path", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: bad, namespace: shop}
spec:
  targetRefs: [{kind: Deployment, name: orders}]
  loadBalancer: {type: Fastest}
  retries: {attempts: 30, perTryTimeout: soon, retryOn: [5xx, sometimes]}
  timout: 2s
)");
  auto set = ValidatePolicies(mesh);
  auto errors = Errors(*set, "TrafficPolicy/shop/bad");
  CHECK(errors == std::vector<std::string>{
                      "spec.timout: unknown field",
                      "spec.targetRefs[0].kind: must be Service or HTTPRoute",
                      "spec.loadBalancer.type: must be one of RoundRobin, LeastRequest, Random, RingHash",
                      "spec.retries.attempts: must be between 0 and 10",
                      "spec.retries.perTryTimeout: not a duration (like 500ms, 2s, 1m30s)",
                      "spec.retries.retryOn[1]: unknown retry condition sometimes (one of 5xx, cancelled, "
                      "connect-failure, deadline-exceeded, gateway-error, internal, refused-stream, reset, "
                      "resource-exhausted, retriable-4xx, unavailable)"});
  CHECK_FALSE(set->statuses.at("TrafficPolicy/shop/bad").accepted);
  CHECK(set->traffic_policies.empty());
  const auto& e = set->statuses.at("TrafficPolicy/shop/bad").errors[0];
  CHECK(e.ToString() == "test.yaml#0: TrafficPolicy shop/bad: spec.timout: unknown field");
}

TEST_CASE("an invalid object is rejected alone", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: weft.io/v1alpha1
kind: MTLSPolicy
metadata: {name: bad, namespace: shop}
spec: {mode: STRICTEST}
---
apiVersion: weft.io/v1alpha1
kind: MTLSPolicy
metadata: {name: good, namespace: shop}
spec: {mode: STRICT}
---
apiVersion: weft.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: nospec, namespace: shop}
)");
  auto set = ValidatePolicies(mesh);
  CHECK(Errors(*set, "MTLSPolicy/shop/bad") ==
        std::vector<std::string>{"spec.mode: must be one of STRICT, PERMISSIVE, DISABLE"});
  CHECK(Errors(*set, "RateLimitPolicy/shop/nospec") == std::vector<std::string>{"spec: required"});
  REQUIRE(set->mtls_policies.size() == 1);
  CHECK(set->mtls_policies[0].meta.name == "good");
  CHECK(MtlsModeFor(*set, "shop", {}) == MtlsMode::kStrict);
}

TEST_CASE("HTTPRoute rules are checked against the Gateway API specification", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad, namespace: shop}
spec:
  parentRefs: [{kind: Service, group: "", name: orders, port: 70000}]
  rules:
  - matches: [{path: {type: Exact, value: "no-slash"}, headers: [{name: "bad header", value: x}], method: FETCH}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 305}}, {type: ExtensionRef}]
    backendRefs: [{name: orders}, {kind: ConfigMap, name: x, port: 80}]
    timeouts: {request: 1s, backendRequest: 5s}
  - matches: [{path: {type: RegularExpression, value: "(unclosed"}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /x}}}]
    backendRefs: [{name: orders, port: 8080, weight: -1}]
)");
  auto set = ValidatePolicies(mesh);
  auto errors = Errors(*set, "HTTPRoute/shop/bad");
  CHECK(errors == std::vector<std::string>{
                      "spec.parentRefs[0].port: must be between 1 and 65535",
                      "spec.rules[0].matches[0].path.value: must be an absolute path (start with /)",
                      "spec.rules[0].matches[0].headers[0].name: not a valid header or parameter name",
                      "spec.rules[0].matches[0].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, "
                      "OPTIONS, TRACE, PATCH",
                      "spec.rules[0].filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308",
                      "spec.rules[0].filters[1].type: ExtensionRef filters are not supported by Weft",
                      "spec.rules[0].backendRefs[0].port: required for a Service backend",
                      "spec.rules[0].backendRefs[1].kind: only Service backends are supported",
                      "spec.rules[0].backendRefs: must be empty when the rule has a RequestRedirect filter",
                      "spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request",
                      "spec.rules[1].matches[0].path.value: invalid RE2 regular expression: missing ): (unclosed",
                      "spec.rules[1].backendRefs[0].weight: must be between 0 and 1000000",
                      "spec.rules[1].filters: ReplacePrefixMatch needs every match of the rule to be a PathPrefix "
                      "match"});
}

TEST_CASE("AuthorizationPolicy principals, namespaces, methods, paths and ports are checked", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: shop}
spec:
  selector: {matchLabels: {app: x}}
  targetRefs: [{kind: Service, name: x}]
  action: MAYBE
  rules:
  - from: [{principals: ["orders", "spiffe://a*b"]}, {}]
    to: [{methods: [post], paths: ["admin"], ports: [0]}]
)");
  auto set = ValidatePolicies(mesh);
  CHECK(Errors(*set, "AuthorizationPolicy/shop/bad") ==
        std::vector<std::string>{
            "spec: set selector or targetRefs, not both",
            "spec.action: must be one of ALLOW, DENY",
            "spec.rules[0].from[0].principals[0]: not a SPIFFE ID (spiffe://<trust domain>/ns/<ns>/sa/<sa>) or a "
            "pattern with one '*' at its start or end",
            "spec.rules[0].from[0].principals[1]: not a SPIFFE ID (spiffe://<trust domain>/ns/<ns>/sa/<sa>) or a "
            "pattern with one '*' at its start or end",
            "spec.rules[0].from[1]: must name principals or namespaces",
            "spec.rules[0].to[0].methods[0]: must be an upper-case HTTP method",
            "spec.rules[0].to[0].paths[0]: must be a path (\"/x\"), a prefix (\"/x/*\"), a suffix (\"*.js\") or "
            "\"*\"",
            "spec.rules[0].to[0].ports[0]: must be a port number between 1 and 65535"});
}

TEST_CASE("TrafficPolicy retryBudget is typed and checked", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: ok, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: orders}]
  connectionLimits: {retryBudget: {percent: 25, minRetryConcurrency: 5}}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: bad, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: payments}]
  connectionLimits: {retryBudget: {percent: 120, minimum: 5}}
)");
  auto set = ValidatePolicies(mesh);
  REQUIRE(set->traffic_policies.size() == 1);
  const auto& budget = set->traffic_policies[0].connection_limits->retry_budget;
  REQUIRE(budget);
  CHECK(budget->percent == 25u);
  CHECK(budget->min_retry_concurrency == 5u);
  CHECK(Errors(*set, "TrafficPolicy/shop/bad") ==
        std::vector<std::string>{"spec.connectionLimits.retryBudget.minimum: unknown field",
                                 "spec.connectionLimits.retryBudget.percent: must be between 0 and 100"});
}

TEST_CASE("TrafficPolicy on an HTTPRoute may not set cluster settings", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: tp, namespace: shop}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  loadBalancer: {type: Random}
  retries: {attempts: 1}
)");
  auto set = ValidatePolicies(mesh);
  CHECK(Errors(*set, "TrafficPolicy/shop/tp") ==
        std::vector<std::string>{"spec.loadBalancer: applies to Services only; a policy that targets an HTTPRoute may "
                                 "set retries, timeout and fault"});
}

TEST_CASE("the most specific policy wins", "[validation]") {
  auto mesh = Mesh(R"(
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {selector: {app: orders}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: shop}
spec: {selector: {app: other}, ports: [{port: 80}]}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: mesh, namespace: weft-system}
spec: {timeout: 1s}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: ns, namespace: shop}
spec: {timeout: 2s}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: svc, namespace: shop}
spec: {targetRefs: [{kind: Service, name: orders}], timeout: 3s}
---
apiVersion: weft.io/v1alpha1
kind: MTLSPolicy
metadata: {name: mesh, namespace: weft-system}
spec: {mode: STRICT}
---
apiVersion: weft.io/v1alpha1
kind: MTLSPolicy
metadata: {name: sel, namespace: shop}
spec: {selector: {matchLabels: {app: orders}}, mode: DISABLE}
)");
  auto set = ValidatePolicies(mesh);
  CHECK(TrafficPolicyForService(*set, mesh.services.at("shop/orders"))->meta.name == "svc");
  CHECK(TrafficPolicyForService(*set, mesh.services.at("shop/other"))->meta.name == "ns");
  discovery::Service elsewhere = mesh.services.at("shop/other");
  elsewhere.meta.namespace_ = "ops";
  CHECK(TrafficPolicyForService(*set, elsewhere)->meta.name == "mesh");
  CHECK(MtlsModeFor(*set, "shop", {{"app", "orders"}}) == MtlsMode::kDisable);
  CHECK(MtlsModeFor(*set, "shop", {{"app", "other"}}) == MtlsMode::kStrict);
  CHECK(MtlsModeFor(*set, "ops", {}) == MtlsMode::kStrict);
  auto empty = ValidatePolicies(discovery::MeshSnapshot{});
  CHECK(MtlsModeFor(*empty, "ops", {}) == MtlsMode::kPermissive);  // the default
}

}  // namespace
}  // namespace weft::policy
