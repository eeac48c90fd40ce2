// An outbound or inbound RouteConfiguration compiled once, when the proxy
// accepts it, into a form the data path matches requests against: virtual
// host by Host, first matching route (path, headers, query parameters), and
// the route's action (cluster, weighted clusters, redirect, direct response)
// with its rewrites, header changes and timeout. Immutable and shared by all
// workers. The matching semantics are Envoy's, as traced by
// tests/testing/xds_simulator.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/route/v3/route.pb.h"
#include "proxy/fault_filter.h"
#include "proxy/http_codec.h"
#include "proxy/local_rate_limit.h"
#include "proxy/upgrade_policy.h"

namespace re2 {
class RE2;
}

namespace weft::proxy {

using RegexPtr = std::shared_ptr<const re2::RE2>;

struct StringMatch {
  enum class Kind { kExact, kPrefix, kSuffix, kContains, kRegex } kind = Kind::kExact;
  std::string value;
  bool ignore_case = false;
  RegexPtr regex;
  bool Matches(std::string_view v) const;
};

struct HeaderMatch {
  std::string name;  // lower case; ":method", ":path", ":authority" are pseudo headers
  std::optional<StringMatch> match;  // nullopt: present_match
  bool present = true;
  bool invert = false;
};

struct QueryMatch {
  std::string name;
  std::optional<StringMatch> match;  // nullopt: present_match
  bool present = true;
};

// Envoy's RetryPolicy as weft-proxy applies it (docs/proxy.md, "Retries").
struct RetryPolicy {
  uint32_t num_retries = 1;      // Envoy's default when a retry_policy is present
  uint64_t per_try_timeout_ms = 0;  // 0: only the route timeout
  bool on_5xx = false;           // any 5xx, reset, connect failure, per-try timeout
  bool on_gateway_error = false;  // 502/503/504, reset, connect failure, per-try timeout
  bool on_connect_failure = false;
  bool on_reset = false;         // disconnect/reset before the response head, connect failure, per-try timeout
  bool on_retriable_4xx = false;  // 409
  std::vector<uint32_t> retriable_status_codes;  // with retry_on "retriable-status-codes"
  uint64_t base_interval_ms = 25;  // retry_back_off (Envoy's defaults)
  uint64_t max_interval_ms = 250;
};

struct HeaderChange {
  std::string name;
  std::string value;
  bool append = false;  // APPEND_IF_EXISTS_OR_ADD; else overwrite
};

struct RedirectSpec {
  std::string scheme, host, path, prefix_rewrite;
  uint32_t port = 0;
  RegexPtr regex;
  std::string regex_substitution;
  bool strip_query = false;
  int status = 301;
};

// A route's request_mirror_policies entry: a fire-and-forget copy of the
// request to `cluster` for `per_million` of requests (runtime_fraction's
// default_value; absent: all).
struct MirrorPolicy {
  std::string cluster;
  uint32_t per_million = 1000000;
};

struct WeightedCluster {
  std::string name;
  uint32_t weight = 0;
};

struct RouteEntry {
  std::string name;
  // match
  enum class PathKind { kPrefix, kExact, kSeparatedPrefix, kRegex } path_kind = PathKind::kPrefix;
  std::string path;
  RegexPtr path_regex;
  std::vector<HeaderMatch> headers;
  std::vector<QueryMatch> query;
  // action
  enum class ActionKind { kCluster, kRedirect, kDirect } action = ActionKind::kCluster;
  std::vector<WeightedCluster> clusters;  // one for a plain cluster
  uint64_t total_weight = 0;
  int direct_status = 0;
  std::string direct_body;
  RedirectSpec redirect;
  int cluster_not_found_status = 503;
  std::string prefix_rewrite;
  RegexPtr regex_rewrite;
  std::string regex_substitution;
  std::string host_rewrite;
  std::vector<HeaderChange> request_headers_to_add;
  std::vector<std::string> request_headers_to_remove;
  std::vector<HeaderChange> response_headers_to_add;
  std::vector<std::string> response_headers_to_remove;
  uint64_t timeout_ms = 0;  // 0: none
  // idle_timeout: replaces the HCM's stream_idle_timeout (0 disables); applies to upgraded (tunnelled)
  // streams.
  std::optional<uint64_t> idle_timeout_ms;
  UpgradePolicy upgrades;            // upgrade_configs: per-route overrides of the HCM's
  std::optional<RetryPolicy> retry;  // route retry_policy
  // typed_per_filter_config of local_ratelimit filters, by filter name.
  std::map<std::string, LocalRateLimitConfigConstSharedPtr> rate_limits;
  std::vector<MirrorPolicy> mirrors;  // route request_mirror_policies
  // typed_per_filter_config["envoy.filters.http.fault"]; null: the listener's.
  FaultConfigConstSharedPtr fault;

  // The cluster for a uniform random number in [0, total_weight).
  const std::string& PickCluster(uint64_t random) const;
  // The path sent upstream after prefix/regex rewrites (query kept).
  std::string RewritePath(const std::string& target_path) const;
  // The Location of a redirect for a request to http://host/target_path.
  std::string RedirectLocation(const std::string& host, const std::string& target_path) const;
};

struct VirtualHostEntry {
  std::string name;
  std::vector<RouteEntry> routes;
};

// What routing needs to know of a request.
struct RouteRequest {
  std::string_view host;    // Host or absolute-URI authority, may carry :port
  std::string_view method;
  std::string_view path;    // origin-form, may carry ?query
  const HeaderList* headers = nullptr;
};

class RouteTable;
using RouteTableConstSharedPtr = std::shared_ptr<const RouteTable>;

class RouteTable {
 public:
  // Validates and compiles; every unsupported or broken field is an error
  // naming its place ("virtual_hosts[1].routes[0].match.safe_regex: ...").
  static absl::StatusOr<RouteTableConstSharedPtr> Create(const envoy::config::route::v3::RouteConfiguration& config);

  // The virtual host for `host` (exact domain, then wildcard domains), or null.
  const VirtualHostEntry* FindVirtualHost(std::string_view host) const;
  // The first route of `vhost` that matches, or null (404).
  static const RouteEntry* FindRoute(const VirtualHostEntry& vhost, const RouteRequest& request);

  const std::string& name() const { return name_; }
  size_t size() const { return vhosts_.size(); }

 private:
  std::string name_;
  std::vector<VirtualHostEntry> vhosts_;
  absl::flat_hash_map<std::string, size_t> exact_domains_;      // looked up by string_view
  std::vector<std::pair<std::string, size_t>> suffix_domains_;  // "*.x" → ".x", and "*" → ""
};

// Shared with the HTTP filters (RBAC) that match on the same Envoy types.
// Each error names its place under `path`.
absl::StatusOr<StringMatch> CompileStringMatch(const envoy::type::matcher::v3::StringMatcher& m,
                                               const std::string& path);
absl::StatusOr<HeaderMatch> CompileHeaderMatch(const envoy::config::route::v3::HeaderMatcher& m,
                                               const std::string& path);
// A request header's value as Envoy matches it: ":method", ":path" (with the
// query), ":authority"/"host", else repeated headers joined with ",".
std::optional<std::string> RequestHeaderValue(const RouteRequest& request, std::string_view name);
bool MatchesHeader(const HeaderMatch& match, const RouteRequest& request);

// Splits "a:80" into ("a", 80); a bracketed IPv6 literal keeps its brackets.
std::pair<std::string, std::optional<uint32_t>> SplitHostPort(std::string_view authority);

}  // namespace weft::proxy
