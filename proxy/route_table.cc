#include "proxy/route_table.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"

namespace weft::proxy {
namespace {

using envoy::config::route::v3::HeaderMatcher;
using envoy::config::route::v3::RouteConfiguration;
using envoy::type::matcher::v3::StringMatcher;

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(absl::string_view(s.data(), s.size())); }

uint64_t Millis(const google::protobuf::Duration& d) {
  return static_cast<uint64_t>(d.seconds()) * 1000 + static_cast<uint64_t>(d.nanos()) / 1000000;
}

class Errors {
 public:
  void Add(const std::string& path, const std::string& what) { errors_.push_back(path + ": " + what); }
  void Add(std::string what) { errors_.push_back(std::move(what)); }
  bool empty() const { return errors_.empty(); }
  std::string Join() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

RegexPtr CompileRegex(const std::string& pattern, const std::string& path, Errors& errors) {
  auto re = std::make_shared<const re2::RE2>(pattern, re2::RE2::Quiet);
  if (!re->ok()) {
    errors.Add(path, "invalid regex: " + re->error());
    return nullptr;
  }
  return re;
}

std::optional<StringMatch> ConvertStringMatch(const StringMatcher& m, const std::string& path, Errors& errors) {
  StringMatch out;
  out.ignore_case = m.ignore_case();
  switch (m.match_pattern_case()) {
    case StringMatcher::kExact: out.kind = StringMatch::Kind::kExact; out.value = m.exact(); break;
    case StringMatcher::kPrefix: out.kind = StringMatch::Kind::kPrefix; out.value = m.prefix(); break;
    case StringMatcher::kSuffix: out.kind = StringMatch::Kind::kSuffix; out.value = m.suffix(); break;
    case StringMatcher::kContains: out.kind = StringMatch::Kind::kContains; out.value = m.contains(); break;
    case StringMatcher::kSafeRegex:
      out.kind = StringMatch::Kind::kRegex;
      out.regex = CompileRegex(m.safe_regex().regex(), path + ".safe_regex", errors);
      if (!out.regex) return std::nullopt;
      break;
    default: errors.Add(path, "unsupported string matcher"); return std::nullopt;
  }
  if (out.ignore_case) out.value = Lower(out.value);
  return out;
}

std::vector<HeaderChange> ConvertHeaderChanges(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& adds) {
  std::vector<HeaderChange> out;
  for (const auto& h : adds) {
    HeaderChange c;
    c.name = Lower(h.header().key());
    c.value = h.header().value();
    using HVO = envoy::config::core::v3::HeaderValueOption;
    c.append = h.append_action() == HVO::APPEND_IF_EXISTS_OR_ADD;  // the deprecated `append` is not read
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<RetryPolicy> ConvertRetryPolicy(const envoy::config::route::v3::RetryPolicy& p, const std::string& path,
                                              Errors& errors) {
  RetryPolicy out;
  if (p.has_num_retries()) out.num_retries = p.num_retries().value();
  if (p.has_per_try_timeout()) out.per_try_timeout_ms = Millis(p.per_try_timeout());
  bool status_codes = false;
  for (absl::string_view raw : absl::StrSplit(p.retry_on(), ',', absl::SkipEmpty())) {
    std::string on(absl::StripAsciiWhitespace(raw));
    if (on == "5xx") {
      out.on_5xx = true;
    } else if (on == "gateway-error") {
      out.on_gateway_error = true;
    } else if (on == "connect-failure") {
      out.on_connect_failure = true;
    } else if (on == "reset" || on == "refused-stream") {
      out.on_reset = true;  // refused-stream is an HTTP/2 reset; HTTP/1.1 upstreams never send it
    } else if (on == "retriable-4xx") {
      out.on_retriable_4xx = true;
    } else if (on == "retriable-status-codes") {
      status_codes = true;
    } else if (on == "cancelled" || on == "deadline-exceeded" || on == "internal" || on == "resource-exhausted" ||
               on == "unavailable") {
      // gRPC status conditions: weft-proxy forwards HTTP/1.1 only, where they never occur.
    } else {
      errors.Add(path + ".retry_on", "\"" + on + "\" is not supported");
    }
  }
  if (status_codes) out.retriable_status_codes.assign(p.retriable_status_codes().begin(), p.retriable_status_codes().end());
  if (p.has_retry_back_off()) {
    if (p.retry_back_off().has_base_interval()) out.base_interval_ms = Millis(p.retry_back_off().base_interval());
    out.max_interval_ms = p.retry_back_off().has_max_interval() ? Millis(p.retry_back_off().max_interval())
                                                                : out.base_interval_ms * 10;
    if (out.base_interval_ms == 0) errors.Add(path + ".retry_back_off.base_interval", "must be positive");
  }
  // Fields that would change which attempts are made are refused rather than ignored.
  if (p.has_per_try_idle_timeout() || p.has_retry_priority() || p.retry_options_predicates_size() > 0 ||
      p.retriable_headers_size() > 0 || p.retriable_request_headers_size() > 0 || p.has_rate_limited_retry_back_off()) {
    errors.Add(path, "only retry_on, num_retries, per_try_timeout, retriable_status_codes, retry_back_off and "
                     "retry_host_predicate are supported");
  }
  return out;
}

int RedirectStatus(envoy::config::route::v3::RedirectAction::RedirectResponseCode code) {
  using RA = envoy::config::route::v3::RedirectAction;
  switch (code) {
    case RA::FOUND: return 302;
    case RA::SEE_OTHER: return 303;
    case RA::TEMPORARY_REDIRECT: return 307;
    case RA::PERMANENT_REDIRECT: return 308;
    default: return 301;
  }
}

void ConvertRoute(const envoy::config::route::v3::Route& route, const std::string& path, RouteEntry& out,
                  Errors& errors) {
  using RM = envoy::config::route::v3::RouteMatch;
  out.name = route.name();
  const RM& m = route.match();
  switch (m.path_specifier_case()) {
    case RM::kPrefix: out.path_kind = RouteEntry::PathKind::kPrefix; out.path = m.prefix(); break;
    case RM::kPath: out.path_kind = RouteEntry::PathKind::kExact; out.path = m.path(); break;
    case RM::kPathSeparatedPrefix:
      out.path_kind = RouteEntry::PathKind::kSeparatedPrefix;
      out.path = m.path_separated_prefix();
      break;
    case RM::kSafeRegex:
      out.path_kind = RouteEntry::PathKind::kRegex;
      out.path_regex = CompileRegex(m.safe_regex().regex(), path + ".match.safe_regex", errors);
      break;
    default: errors.Add(path + ".match", "unsupported path specifier"); break;
  }
  if (m.has_case_sensitive() && !m.case_sensitive().value()) {
    errors.Add(path + ".match.case_sensitive", "case-insensitive paths are not supported");
  }
  for (int i = 0; i < m.headers_size(); ++i) {
    auto hm = CompileHeaderMatch(m.headers(i), absl::StrCat(path, ".match.headers[", i, "]"));
    if (!hm.ok()) {
      errors.Add(std::string(hm.status().message()));
      continue;
    }
    out.headers.push_back(std::move(*hm));
  }
  for (int i = 0; i < m.query_parameters_size(); ++i) {
    const auto& q = m.query_parameters(i);
    QueryMatch qm;
    qm.name = q.name();
    if (q.has_string_match()) {
      qm.match = ConvertStringMatch(q.string_match(), absl::StrCat(path, ".match.query_parameters[", i, "]"), errors);
    } else {
      qm.present = q.present_match();
    }
    out.query.push_back(std::move(qm));
  }
  if (m.has_runtime_fraction() || m.has_grpc() || m.has_tls_context() || m.dynamic_metadata_size() > 0) {
    errors.Add(path + ".match", "unsupported match field");
  }

  if (route.has_route()) {
    const auto& a = route.route();
    out.action = RouteEntry::ActionKind::kCluster;
    if (a.has_weighted_clusters()) {
      for (const auto& c : a.weighted_clusters().clusters()) {
        if (c.weight().value() == 0) continue;
        out.clusters.push_back({c.name(), c.weight().value()});
        out.total_weight += c.weight().value();
      }
      if (out.clusters.empty()) errors.Add(path + ".route.weighted_clusters", "no cluster with a weight");
    } else if (!a.cluster().empty()) {
      out.clusters.push_back({a.cluster(), 1});
      out.total_weight = 1;
    } else {
      errors.Add(path + ".route", "needs cluster or weighted_clusters (cluster_header is not supported)");
    }
    out.cluster_not_found_status = a.cluster_not_found_response_code() ==
                                           envoy::config::route::v3::RouteAction::INTERNAL_SERVER_ERROR
                                       ? 500
                                       : (a.cluster_not_found_response_code() ==
                                                  envoy::config::route::v3::RouteAction::NOT_FOUND
                                              ? 404
                                              : 503);
    out.prefix_rewrite = a.prefix_rewrite();
    if (a.has_regex_rewrite()) {
      out.regex_rewrite = CompileRegex(a.regex_rewrite().pattern().regex(), path + ".route.regex_rewrite", errors);
      out.regex_substitution = a.regex_rewrite().substitution();
    }
    out.host_rewrite = a.host_rewrite_literal();
    if (a.has_timeout()) out.timeout_ms = Millis(a.timeout());
    if (a.has_max_stream_duration() && a.max_stream_duration().has_max_stream_duration()) {
      out.timeout_ms = Millis(a.max_stream_duration().max_stream_duration());
    }
    if (a.has_idle_timeout()) out.idle_timeout_ms = Millis(a.idle_timeout());
    if (a.upgrade_configs_size() > 0) {
      auto upgrades = UpgradePolicy::FromRoute(a, path + ".route");
      if (upgrades.ok()) {
        out.upgrades = std::move(*upgrades);
      } else {
        errors.Add(std::string(upgrades.status().message()));
      }
    }
    if (a.has_retry_policy()) out.retry = ConvertRetryPolicy(a.retry_policy(), path + ".route.retry_policy", errors);
    for (int i = 0; i < a.request_mirror_policies_size(); ++i) {
      const auto& m = a.request_mirror_policies(i);
      const std::string mp = absl::StrCat(path, ".route.request_mirror_policies[", i, "]");
      MirrorPolicy mirror;
      mirror.cluster = m.cluster();
      if (mirror.cluster.empty()) errors.Add(mp + ".cluster", "required (cluster_header is not supported)");
      if (m.has_runtime_fraction()) mirror.per_million = PerMillion(m.runtime_fraction().default_value());
      if (m.has_trace_sampled()) {
        errors.Add(mp, "only cluster and runtime_fraction are supported");
      }
      out.mirrors.push_back(std::move(mirror));
    }
  } else if (route.has_redirect()) {
    const auto& r = route.redirect();
    out.action = RouteEntry::ActionKind::kRedirect;
    out.redirect.scheme = r.scheme_redirect();
    if (r.https_redirect()) out.redirect.scheme = "https";
    out.redirect.host = r.host_redirect();
    out.redirect.port = r.port_redirect();
    out.redirect.path = r.path_redirect();
    out.redirect.prefix_rewrite = r.prefix_rewrite();
    if (r.has_regex_rewrite()) {
      out.redirect.regex = CompileRegex(r.regex_rewrite().pattern().regex(), path + ".redirect.regex_rewrite", errors);
      out.redirect.regex_substitution = r.regex_rewrite().substitution();
    }
    out.redirect.strip_query = r.strip_query();
    out.redirect.status = RedirectStatus(r.response_code());
  } else if (route.has_direct_response()) {
    out.action = RouteEntry::ActionKind::kDirect;
    out.direct_status = static_cast<int>(route.direct_response().status());
    if (out.direct_status < 200 || out.direct_status > 599) {
      errors.Add(path + ".direct_response.status", "must be in [200, 599]");
    }
    out.direct_body = route.direct_response().body().inline_string();
  } else {
    errors.Add(path, "needs route, redirect or direct_response");
  }
  for (const auto& [filter, any] : route.typed_per_filter_config()) {
    const std::string fp = path + ".typed_per_filter_config[\"" + filter + "\"]";
    if (any.Is<envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit>()) {
      envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit limit;
      const std::string fpath = absl::StrCat(path, ".typed_per_filter_config[", filter, "]");
      if (!any.UnpackTo(&limit)) {
        errors.Add(fpath, "not a LocalRateLimit");
        continue;
      }
      auto config = LocalRateLimitConfig::Create(limit);
      if (!config.ok() || !(*config)->has_bucket()) {
        errors.Add(fpath,
                   config.ok() ? "token_bucket: required per route" : std::string(config.status().message()));
        continue;
      }
      out.rate_limits[filter] = *config;
    } else if (filter == "envoy.filters.http.fault" ||
               any.Is<envoy::extensions::filters::http::fault::v3::HTTPFault>()) {
      envoy::extensions::filters::http::fault::v3::HTTPFault fault;
      if (!any.UnpackTo(&fault)) {
        errors.Add(fp, "not an HTTPFault");
        continue;
      }
      auto parsed = ParseFault(fault, fp);
      if (!parsed.ok()) {
        errors.Add(std::string(parsed.status().message()));
        continue;
      }
      out.fault = *parsed;
    } else {
      errors.Add(fp, "unsupported per-route filter config (only envoy.filters.http.fault and local_ratelimit)");
    }
  }
  out.request_headers_to_add = ConvertHeaderChanges(route.request_headers_to_add());
  for (const auto& h : route.request_headers_to_remove()) out.request_headers_to_remove.push_back(Lower(h));
  out.response_headers_to_add = ConvertHeaderChanges(route.response_headers_to_add());
  for (const auto& h : route.response_headers_to_remove()) out.response_headers_to_remove.push_back(Lower(h));
}

std::string QueryValue(std::string_view query, std::string_view name, bool& found) {
  found = false;
  for (absl::string_view kv : absl::StrSplit(absl::string_view(query.data(), query.size()), '&')) {
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    absl::string_view k = kv.substr(0, eq);
    if (k == absl::string_view(name.data(), name.size())) {
      found = true;
      return eq == absl::string_view::npos ? std::string() : std::string(kv.substr(eq + 1));
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<StringMatch> CompileStringMatch(const StringMatcher& m, const std::string& path) {
  Errors errors;
  auto out = ConvertStringMatch(m, path, errors);
  if (!errors.empty() || !out) return absl::InvalidArgumentError(errors.Join());
  return *out;
}

absl::StatusOr<HeaderMatch> CompileHeaderMatch(const HeaderMatcher& h, const std::string& hp) {
  Errors errors;
  HeaderMatch hm;
  hm.name = Lower(h.name());
  hm.invert = h.invert_match();
  switch (h.header_match_specifier_case()) {
    case HeaderMatcher::kStringMatch: hm.match = ConvertStringMatch(h.string_match(), hp + ".string_match", errors); break;
    case HeaderMatcher::kPresentMatch: hm.present = h.present_match(); break;
    default: errors.Add(hp, "unsupported header matcher (use string_match or present_match)"); break;
  }
  if (!errors.empty()) return absl::InvalidArgumentError(errors.Join());
  return hm;
}

std::optional<std::string> RequestHeaderValue(const RouteRequest& request, std::string_view name) {
  if (name == ":method") return std::string(request.method);
  if (name == ":path") return std::string(request.path);
  if (name == ":authority" || name == "host") return std::string(request.host);
  if (request.headers == nullptr) return std::nullopt;
  // Repeated headers match as one comma-joined value (Envoy).
  std::optional<std::string> joined;
  for (const auto& [k, v] : *request.headers) {
    if (!EqualsIgnoreCase(k, name)) continue;
    if (joined) {
      *joined += "," + v;
    } else {
      joined = v;
    }
  }
  return joined;
}

bool MatchesHeader(const HeaderMatch& h, const RouteRequest& request) {
  auto value = RequestHeaderValue(request, h.name);
  bool matched = h.match ? (value && h.match->Matches(*value)) : (value.has_value() == h.present);
  return h.invert ? !matched : matched;
}

bool StringMatch::Matches(std::string_view raw) const {
  std::string lowered;
  std::string_view v = raw;
  if (ignore_case && kind != Kind::kRegex) {
    lowered = Lower(raw);
    v = lowered;
  }
  switch (kind) {
    case Kind::kExact: return v == value;
    case Kind::kPrefix: return v.substr(0, value.size()) == value;
    case Kind::kSuffix: return v.size() >= value.size() && v.substr(v.size() - value.size()) == value;
    case Kind::kContains: return v.find(value) != std::string_view::npos;
    case Kind::kRegex: return re2::RE2::FullMatch(re2::StringPiece(raw.data(), raw.size()), *regex);
  }
  return false;
}

std::pair<std::string, std::optional<uint32_t>> SplitHostPort(std::string_view authority) {
  std::string_view host = authority;
  std::optional<uint32_t> port;
  size_t colon = authority.rfind(':');
  size_t bracket = authority.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    uint32_t p = 0;
    if (absl::SimpleAtoi(absl::string_view(authority.data() + colon + 1, authority.size() - colon - 1), &p) &&
        p <= 65535) {
      port = p;
    }
    host = authority.substr(0, colon);
  }
  return {std::string(host), port};
}

absl::StatusOr<RouteTableConstSharedPtr> RouteTable::Create(const RouteConfiguration& config) {
  auto table = std::make_shared<RouteTable>();
  table->name_ = config.name();
  Errors errors;
  for (int i = 0; i < config.virtual_hosts_size(); ++i) {
    const auto& vh = config.virtual_hosts(i);
    std::string vpath = absl::StrCat("virtual_hosts[", i, "]");
    VirtualHostEntry entry;
    entry.name = vh.name();
    if (vh.domains_size() == 0) errors.Add(vpath + ".domains", "must not be empty");
    for (const auto& raw : vh.domains()) {
      std::string d = Lower(raw);
      if (d == "*") {
        table->suffix_domains_.emplace_back("", table->vhosts_.size());
      } else if (d.size() > 1 && d[0] == '*') {
        table->suffix_domains_.emplace_back(d.substr(1), table->vhosts_.size());
      } else if (!table->exact_domains_.emplace(d, table->vhosts_.size()).second) {
        errors.Add(vpath + ".domains", "domain \"" + d + "\" is repeated across virtual hosts");
      }
    }
    for (int j = 0; j < vh.routes_size(); ++j) {
      RouteEntry route;
      ConvertRoute(vh.routes(j), absl::StrCat(vpath, ".routes[", j, "]"), route, errors);
      entry.routes.push_back(std::move(route));
    }
    table->vhosts_.push_back(std::move(entry));
  }
  // Longest suffix first, the catch-all "*" last (Envoy's order).
  std::stable_sort(table->suffix_domains_.begin(), table->suffix_domains_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("RouteConfiguration ", config.name(), ": ", errors.Join()));
  }
  return RouteTableConstSharedPtr(std::move(table));
}

const VirtualHostEntry* RouteTable::FindVirtualHost(std::string_view host) const {
  // Lower-cased on the stack: this runs for every outbound request.
  char stack[256];
  std::string heap;
  std::string_view h;
  if (host.size() <= sizeof(stack)) {
    for (size_t i = 0; i < host.size(); ++i)
      stack[i] = absl::ascii_tolower(static_cast<unsigned char>(host[i]));
    h = std::string_view(stack, host.size());
  } else {
    heap = Lower(host);
    h = heap;
  }
  if (auto it = exact_domains_.find(absl::string_view(h.data(), h.size())); it != exact_domains_.end()) {
    return &vhosts_[it->second];
  }
  for (const auto& [suffix, index] : suffix_domains_) {
    if (h.size() >= suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return &vhosts_[index];
    }
  }
  return nullptr;
}

const RouteEntry* RouteTable::FindRoute(const VirtualHostEntry& vhost, const RouteRequest& request) {
  std::string_view path = request.path;
  std::string_view query;
  if (size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  for (const RouteEntry& r : vhost.routes) {
    switch (r.path_kind) {
      case RouteEntry::PathKind::kPrefix:
        if (path.substr(0, r.path.size()) != r.path) continue;
        break;
      case RouteEntry::PathKind::kExact:
        if (path != r.path) continue;
        break;
      case RouteEntry::PathKind::kSeparatedPrefix:
        if (path.substr(0, r.path.size()) != r.path) continue;
        if (path.size() > r.path.size() && path[r.path.size()] != '/') continue;
        break;
      case RouteEntry::PathKind::kRegex:
        if (!re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *r.path_regex)) continue;
        break;
    }
    bool ok = true;
    for (const auto& h : r.headers) {
      if (!MatchesHeader(h, request)) {
        ok = false;
        break;
      }
    }
    for (size_t i = 0; ok && i < r.query.size(); ++i) {
      const auto& q = r.query[i];
      bool found = false;
      std::string value = QueryValue(query, q.name, found);
      ok = q.match ? (found && q.match->Matches(value)) : (found == q.present);
    }
    if (ok) return &r;
  }
  return nullptr;
}

const std::string& RouteEntry::PickCluster(uint64_t random) const {
  if (clusters.size() == 1 || total_weight == 0) return clusters.front().name;
  uint64_t x = random % total_weight;
  for (const auto& c : clusters) {
    if (x < c.weight) return c.name;
    x -= c.weight;
  }
  return clusters.back().name;
}

std::string RouteEntry::RewritePath(const std::string& target) const {
  if (prefix_rewrite.empty() && !regex_rewrite) return target;
  size_t q = target.find('?');
  std::string path = target.substr(0, q);
  std::string query = q == std::string::npos ? "" : target.substr(q);
  if (regex_rewrite) {
    re2::RE2::GlobalReplace(&path, *regex_rewrite, regex_substitution);
  } else if (path_kind == PathKind::kPrefix || path_kind == PathKind::kSeparatedPrefix) {
    path = prefix_rewrite + path.substr(std::min(path.size(), this->path.size()));
  } else if (path_kind == PathKind::kExact) {
    path = prefix_rewrite;
  }
  if (path.empty()) path = "/";
  return path + query;
}

std::string RouteEntry::RedirectLocation(const std::string& authority, const std::string& target) const {
  std::string scheme = redirect.scheme.empty() ? "http" : redirect.scheme;
  auto [host, port] = SplitHostPort(authority);
  if (!redirect.host.empty()) host = redirect.host;
  if (redirect.port != 0) port = redirect.port;
  // Well-known ports are elided.
  if (port && ((scheme == "http" && *port == 80) || (scheme == "https" && *port == 443))) port.reset();
  if (!redirect.scheme.empty() && redirect.port == 0) port.reset();
  size_t q = target.find('?');
  std::string path = target.substr(0, q);
  std::string query = q == std::string::npos || redirect.strip_query ? "" : target.substr(q);
  if (!redirect.path.empty()) {
    path = redirect.path;
    if (path.find('?') != std::string::npos) query.clear();
  } else if (redirect.regex) {
    re2::RE2::GlobalReplace(&path, *redirect.regex, redirect.regex_substitution);
  } else if (!redirect.prefix_rewrite.empty()) {
    path = redirect.prefix_rewrite + path.substr(std::min(path.size(), this->path.size()));
  }
  std::string location = absl::StrCat(scheme, "://", host);
  if (port) absl::StrAppend(&location, ":", *port);
  absl::StrAppend(&location, path, query);
  return location;
}

}  // namespace weft::proxy
