// Typed, validated policies: what ValidatePolicies() makes of the
// PolicyDocuments of a MeshSnapshot (DESIGN.md §4: Gateway API HTTPRoute and
// the weft.io kinds). Plain values; the compiler reads them, never the JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace weft::policy {

// Identity and origin of a policy object, for scoping and the source map.
struct PolicyMeta {
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string source;  // SourceRef string: "file.yaml#2" or "kubernetes:ns/name"
  std::string Key() const { return kind + "/" + namespace_ + "/" + name; }
};

// A reference to a Service or an HTTPRoute in the policy's own namespace.
struct TargetRef {
  std::string group;  // "" (core) for Service, "gateway.networking.k8s.io" for HTTPRoute
  std::string kind;   // "Service" | "HTTPRoute"
  std::string name;
};

// ---- gateway.networking.k8s.io/v1 HTTPRoute (the GAMMA mesh subset) ----

enum class PathMatchType { kExact, kPathPrefix, kRegularExpression };
enum class ValueMatchType { kExact, kRegularExpression };

struct PathMatch {
  PathMatchType type = PathMatchType::kPathPrefix;
  std::string value = "/";
};

struct ValueMatch {  // a header or query parameter match
  ValueMatchType type = ValueMatchType::kExact;
  std::string name;
  std::string value;
};

struct HTTPRouteMatch {
  PathMatch path;
  std::vector<ValueMatch> headers;
  std::vector<ValueMatch> query_params;
  std::string method;  // "" = any
};

struct HeaderModifier {
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::pair<std::string, std::string>> add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

enum class PathModifierType { kNone, kReplaceFullPath, kReplacePrefixMatch };

struct PathModifier {
  PathModifierType type = PathModifierType::kNone;
  std::string value;
};

struct URLRewrite {
  std::optional<std::string> hostname;
  PathModifier path;
};

struct RequestRedirect {
  std::optional<std::string> scheme;
  std::optional<std::string> hostname;
  std::optional<uint32_t> port;
  PathModifier path;
  uint32_t status_code = 302;
};

struct BackendRef {
  std::string name;
  std::string namespace_;  // defaulted to the route's namespace
  uint32_t port = 0;
  uint32_t weight = 1;
};

struct RequestMirror {
  BackendRef backend;
  uint32_t percent = 100;  // 0..100
};

struct HTTPRouteRule {
  std::string name;  // optional rule name (sectionName), else "rule<i>"
  int index = 0;
  std::vector<HTTPRouteMatch> matches;  // never empty: defaulted to PathPrefix "/"
  HeaderModifier request_headers;
  HeaderModifier response_headers;
  std::optional<URLRewrite> rewrite;
  std::optional<RequestRedirect> redirect;
  std::vector<RequestMirror> mirrors;
  std::vector<BackendRef> backends;
  std::optional<int64_t> request_timeout_ms;  // timeouts.request; 0 = none
  std::optional<int64_t> backend_request_timeout_ms;
};

struct ServiceParentRef {
  std::string namespace_;  // defaulted to the route's namespace
  std::string name;
  std::optional<uint32_t> port;
};

struct HTTPRoute {
  PolicyMeta meta;
  std::vector<ServiceParentRef> parents;  // Service parents only (others are for gateways)
  std::vector<HTTPRouteRule> rules;
};

// ---- weft.io/v1alpha1 TrafficPolicy ----

enum class LoadBalancerType { kRoundRobin, kLeastRequest, kRandom, kRingHash };

struct ConnectionLimits {
  std::optional<uint32_t> max_connections;
  std::optional<uint32_t> max_pending_requests;
  std::optional<uint32_t> max_requests;
  std::optional<uint32_t> max_retries;
  // Envoy's retry_budget (replaces max_retries): percent of active requests.
  struct RetryBudget {
    std::optional<uint32_t> percent;
    std::optional<uint32_t> min_retry_concurrency;
  };
  std::optional<RetryBudget> retry_budget;
};

struct OutlierDetection {
  std::optional<uint32_t> consecutive_5xx;
  std::optional<uint32_t> consecutive_gateway_errors;
  std::optional<int64_t> interval_ms;
  std::optional<int64_t> base_ejection_time_ms;
  std::optional<uint32_t> max_ejection_percent;
};

struct RetryPolicy {
  uint32_t attempts = 0;
  std::optional<int64_t> per_try_timeout_ms;
  std::vector<std::string> retry_on;
};

struct FaultInjection {
  std::optional<int64_t> delay_ms;
  uint32_t delay_percent = 100;
  std::optional<uint32_t> abort_status;
  uint32_t abort_percent = 100;
};

struct TrafficPolicy {
  PolicyMeta meta;
  std::vector<TargetRef> targets;  // empty: the whole namespace (mesh-wide in the root namespace)
  std::optional<LoadBalancerType> load_balancer;
  std::string hash_header;  // RingHash: hashOn.header
  std::optional<ConnectionLimits> connection_limits;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<RetryPolicy> retries;
  std::optional<int64_t> timeout_ms;
  std::optional<FaultInjection> fault;
};

// ---- weft.io/v1alpha1 AuthorizationPolicy ----

enum class AuthorizationAction { kAllow, kDeny };

struct AuthorizationSource {  // all fields must match
  std::vector<std::string> principals;  // SPIFFE IDs, "*" prefix/suffix wildcards
  std::vector<std::string> namespaces;
};

struct AuthorizationOperation {  // all fields must match
  std::vector<std::string> methods;
  std::vector<std::string> paths;  // exact, "/prefix/*", "*suffix", "*"
  std::vector<uint32_t> ports;
};

struct AuthorizationRule {  // matches when one `from` and one `to` match (empty = any)
  std::vector<AuthorizationSource> from;
  std::vector<AuthorizationOperation> to;
};

struct AuthorizationPolicy {
  PolicyMeta meta;
  std::map<std::string, std::string> selector;  // matchLabels
  std::vector<TargetRef> targets;
  AuthorizationAction action = AuthorizationAction::kAllow;
  std::vector<AuthorizationRule> rules;
};

// ---- weft.io/v1alpha1 RateLimitPolicy ----

struct RateLimitPolicy {
  PolicyMeta meta;
  std::vector<TargetRef> targets;
  uint32_t requests = 0;
  int64_t unit_seconds = 1;  // second | minute | hour
  uint32_t burst = 0;
};

// ---- weft.io/v1alpha1 MTLSPolicy ----

enum class MtlsMode { kStrict, kPermissive, kDisable };

struct MTLSPolicy {
  PolicyMeta meta;
  std::map<std::string, std::string> selector;
  MtlsMode mode = MtlsMode::kPermissive;
};

}  // namespace weft::policy
