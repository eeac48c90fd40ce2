#include "policy/route_builder.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "policy/compiler.h"
#include "re2/re2.h"

namespace weft::policy {
namespace {

using envoy::config::route::v3::Route;
using envoy::config::route::v3::RouteAction;

struct RouteEntry {
  const HTTPRoute* route;
  const HTTPRouteRule* rule;
  const HTTPRouteMatch* match;
  size_t match_index;
};

int PathRank(PathMatchType t) {
  switch (t) {
    case PathMatchType::kExact: return 0;
    case PathMatchType::kRegularExpression: return 1;
    case PathMatchType::kPathPrefix: return 2;
  }
  return 3;
}

// Gateway API precedence: exact path, then the longest prefix, then method,
// then the most header matches, then the most query matches; ties keep the
// order of routes (namespace/name), rules and matches. RegularExpression is
// implementation-specific: like Istio, between exact and prefix.
bool Precedes(const RouteEntry& a, const RouteEntry& b) {
  const HTTPRouteMatch& x = *a.match;
  const HTTPRouteMatch& y = *b.match;
  if (PathRank(x.path.type) != PathRank(y.path.type)) return PathRank(x.path.type) < PathRank(y.path.type);
  if (x.path.value.size() != y.path.value.size()) return x.path.value.size() > y.path.value.size();
  if (x.method.empty() != y.method.empty()) return !x.method.empty();
  if (x.headers.size() != y.headers.size()) return x.headers.size() > y.headers.size();
  return x.query_params.size() > y.query_params.size();
}

void SetDuration(google::protobuf::Duration& d, int64_t ms) {
  d.set_seconds(ms / 1000);
  d.set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

std::string StripTrailingSlash(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

void SetStringMatch(envoy::type::matcher::v3::StringMatcher& m, ValueMatchType type, const std::string& value) {
  if (type == ValueMatchType::kExact) {
    m.set_exact(value);
  } else {
    m.mutable_safe_regex()->set_regex(value);
  }
}

void BuildMatch(const HTTPRouteMatch& match, RouteFlavor flavor, envoy::config::route::v3::RouteMatch& out) {
  switch (match.path.type) {
    case PathMatchType::kExact:
      out.set_path(match.path.value);
      break;
    case PathMatchType::kRegularExpression:
      out.mutable_safe_regex()->set_regex(match.path.value);
      break;
    case PathMatchType::kPathPrefix: {
      const std::string prefix = StripTrailingSlash(match.path.value);
      if (prefix == "/") {
        out.set_prefix("/");
      } else if (flavor == RouteFlavor::kSidecar) {
        out.set_path_separated_prefix(prefix);  // "/v2" matches /v2 and /v2/x, not /v2x
      } else {
        // gRPC has no path_separated_prefix; the same set as a regex.
        out.mutable_safe_regex()->set_regex(absl::StrCat(RE2::QuoteMeta(prefix), "(/.*)?"));
      }
      break;
    }
  }
  if (!match.method.empty()) {
    auto* h = out.add_headers();
    h->set_name(":method");
    h->mutable_string_match()->set_exact(match.method);
  }
  for (const auto& hm : match.headers) {
    auto* h = out.add_headers();
    h->set_name(hm.name);
    SetStringMatch(*h->mutable_string_match(), hm.type, hm.value);
  }
  for (const auto& qm : match.query_params) {
    auto* q = out.add_query_parameters();
    q->set_name(qm.name);
    SetStringMatch(*q->mutable_string_match(), qm.type, qm.value);
  }
}

void AddHeaders(const HeaderModifier& mod,
                google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& add,
                google::protobuf::RepeatedPtrField<std::string>& remove) {
  for (const auto& [name, value] : mod.set) {
    auto* h = add.Add();
    h->mutable_header()->set_key(name);
    h->mutable_header()->set_value(value);
    h->set_append_action(envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  }
  for (const auto& [name, value] : mod.add) {
    auto* h = add.Add();
    h->mutable_header()->set_key(name);
    h->mutable_header()->set_value(value);
    h->set_append_action(envoy::config::core::v3::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD);
  }
  for (const auto& name : mod.remove) *remove.Add() = name;
}

// Prefix replacement with Gateway API semantics: "/p" -> "/r" maps /p/x to
// /r/x; "/p" -> "/" maps /p/x to /x and /p to /.
template <typename Action>
void SetPrefixRewrite(const std::string& match_prefix, const std::string& replacement, Action& action) {
  const std::string prefix = StripTrailingSlash(match_prefix);
  const std::string repl = StripTrailingSlash(replacement);
  if (repl == "/") {
    auto* rr = action.mutable_regex_rewrite();
    rr->mutable_pattern()->set_regex(absl::StrCat("^", RE2::QuoteMeta(prefix == "/" ? "" : prefix), "/*"));
    rr->set_substitution("/");
  } else if (prefix == "/") {
    auto* rr = action.mutable_regex_rewrite();
    rr->mutable_pattern()->set_regex("^/");
    rr->set_substitution(repl + "/");
  } else {
    action.set_prefix_rewrite(repl);
  }
}

bool BackendResolves(const discovery::MeshSnapshot& mesh, const BackendRef& b) {
  auto it = mesh.services.find(discovery::ObjectKey(b.namespace_, b.name));
  if (it == mesh.services.end()) return false;
  return std::any_of(it->second.ports.begin(), it->second.ports.end(),
                     [&](const discovery::ServicePort& p) { return p.port == b.port; });
}

std::string BackendCluster(const BackendRef& b, const CompilerOptions& options) {
  return OutboundClusterName(b.port, "", absl::StrCat(b.name, ".", b.namespace_, ".svc.", options.cluster_domain));
}

const TrafficPolicy* BackendTrafficPolicy(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                                          const BackendRef& b) {
  auto it = mesh.services.find(discovery::ObjectKey(b.namespace_, b.name));
  return it == mesh.services.end() ? nullptr : TrafficPolicyForService(policies, it->second);
}

// Retries, timeout, fault injection and the ring-hash key, from a
// TrafficPolicy; HTTPRoute timeouts (when given) override the policy's.
void ApplyRouteSettings(const TrafficPolicy* tp, const TrafficPolicy* hash_tp, const HTTPRouteRule* rule,
                        RouteFlavor flavor, Route& route) {
  RouteAction& action = *route.mutable_route();
  std::optional<int64_t> timeout = tp != nullptr ? tp->timeout_ms : std::nullopt;
  if (rule != nullptr && rule->request_timeout_ms) timeout = rule->request_timeout_ms;
  std::optional<int64_t> per_try = tp != nullptr && tp->retries ? tp->retries->per_try_timeout_ms : std::nullopt;
  bool retries = tp != nullptr && tp->retries && tp->retries->attempts > 0;
  if (rule != nullptr && rule->backend_request_timeout_ms && *rule->backend_request_timeout_ms > 0) {
    if (retries) {
      per_try = rule->backend_request_timeout_ms;
    } else if (!timeout || *timeout == 0 || *rule->backend_request_timeout_ms < *timeout) {
      timeout = rule->backend_request_timeout_ms;  // one attempt: the backend request is the request
    }
  }
  if (timeout) {
    if (flavor == RouteFlavor::kSidecar) {
      SetDuration(*action.mutable_timeout(), *timeout);
    } else {
      // gRPC reads the deadline from max_stream_duration, not timeout.
      SetDuration(*action.mutable_max_stream_duration()->mutable_max_stream_duration(), *timeout);
    }
  }
  if (retries) {
    std::vector<std::string> on = tp->retries->retry_on;
    if (flavor == RouteFlavor::kProxyless) {
      // gRPC retries on status codes only.
      static const std::set<std::string> kGrpc = {"cancelled", "deadline-exceeded", "internal",
                                                  "resource-exhausted", "unavailable"};
      on.erase(std::remove_if(on.begin(), on.end(), [](const std::string& c) { return kGrpc.count(c) == 0; }),
               on.end());
    } else if (on.empty()) {
      on = {"5xx", "connect-failure", "reset"};
    }
    if (!on.empty()) {
      auto* rp = action.mutable_retry_policy();
      rp->set_retry_on(absl::StrJoin(on, ","));
      rp->mutable_num_retries()->set_value(tp->retries->attempts);
      if (per_try) SetDuration(*rp->mutable_per_try_timeout(), *per_try);
    }
  }
  if (flavor == RouteFlavor::kSidecar && tp != nullptr && tp->fault) {
    envoy::extensions::filters::http::fault::v3::HTTPFault fault;
    if (tp->fault->delay_ms) {
      SetDuration(*fault.mutable_delay()->mutable_fixed_delay(), *tp->fault->delay_ms);
      fault.mutable_delay()->mutable_percentage()->set_numerator(tp->fault->delay_percent);
    }
    if (tp->fault->abort_status) {
      fault.mutable_abort()->set_http_status(*tp->fault->abort_status);
      fault.mutable_abort()->mutable_percentage()->set_numerator(tp->fault->abort_percent);
    }
    PackDeterministic(fault, (*route.mutable_typed_per_filter_config())[kFaultFilterName]);
  }
  if (hash_tp != nullptr && hash_tp->load_balancer == LoadBalancerType::kRingHash && !hash_tp->hash_header.empty()) {
    action.add_hash_policy()->mutable_header()->set_header_name(hash_tp->hash_header);
  }
}

void BuildRuleRoute(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                    const discovery::Service& service, const RouteEntry& e, const CompilerOptions& options,
                    RouteFlavor flavor, Route& route, std::vector<std::string>& sources) {
  const HTTPRouteRule& rule = *e.rule;
  route.set_name(absl::StrCat(e.route->meta.namespace_, "/", e.route->meta.name, "/", rule.name, "/", e.match_index));
  BuildMatch(*e.match, flavor, *route.mutable_match());
  AddHeaders(rule.request_headers, *route.mutable_request_headers_to_add(), *route.mutable_request_headers_to_remove());
  AddHeaders(rule.response_headers, *route.mutable_response_headers_to_add(),
             *route.mutable_response_headers_to_remove());
  if (rule.redirect) {
    auto* r = route.mutable_redirect();
    const auto& rd = *rule.redirect;
    if (rd.scheme) r->set_scheme_redirect(*rd.scheme);
    if (rd.hostname) r->set_host_redirect(*rd.hostname);
    if (rd.port) r->set_port_redirect(*rd.port);
    if (rd.path.type == PathModifierType::kReplaceFullPath) r->set_path_redirect(rd.path.value);
    if (rd.path.type == PathModifierType::kReplacePrefixMatch) SetPrefixRewrite(e.match->path.value, rd.path.value, *r);
    using RA = envoy::config::route::v3::RedirectAction;
    switch (rd.status_code) {
      case 301: r->set_response_code(RA::MOVED_PERMANENTLY); break;
      case 303: r->set_response_code(RA::SEE_OTHER); break;
      case 307: r->set_response_code(RA::TEMPORARY_REDIRECT); break;
      case 308: r->set_response_code(RA::PERMANENT_REDIRECT); break;
      default: r->set_response_code(RA::FOUND); break;
    }
    return;
  }
  uint32_t total = 0;
  for (const auto& b : rule.backends) total += b.weight;
  if (total == 0) {
    // No backends, or all weights zero: Gateway API answers 500.
    route.mutable_direct_response()->set_status(500);
    return;
  }
  RouteAction& action = *route.mutable_route();
  std::vector<const BackendRef*> live;
  for (const auto& b : rule.backends) {
    if (b.weight > 0) live.push_back(&b);
  }
  bool unresolved = false;
  if (live.size() == 1) {
    action.set_cluster(BackendCluster(*live[0], options));
    unresolved = !BackendResolves(mesh, *live[0]);
  } else {
    auto* wc = action.mutable_weighted_clusters();
    for (const BackendRef* b : live) {
      auto* c = wc->add_clusters();
      c->set_name(BackendCluster(*b, options));
      c->mutable_weight()->set_value(b->weight);
      unresolved = unresolved || !BackendResolves(mesh, *b);
    }
  }
  // A backend that does not resolve names a cluster that does not exist;
  // its share of requests gets 500, as Gateway API requires.
  if (unresolved) action.set_cluster_not_found_response_code(RouteAction::INTERNAL_SERVER_ERROR);
  // A per-route rate limit: the destination's sidecar keeps a bucket per tag.
  if (const RateLimitPolicy* rl = RateLimitPolicyForRoute(policies, *e.route);
      rl != nullptr && flavor == RouteFlavor::kSidecar) {
    auto* tag = route.add_request_headers_to_add();
    tag->mutable_header()->set_key(kRouteTagHeader);
    tag->mutable_header()->set_value(absl::StrCat(e.route->meta.namespace_, "/", e.route->meta.name));
    tag->set_append_action(envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    sources.push_back(rl->meta.source);
  }
  if (rule.rewrite && flavor == RouteFlavor::kSidecar) {
    if (rule.rewrite->hostname) action.set_host_rewrite_literal(*rule.rewrite->hostname);
    if (rule.rewrite->path.type == PathModifierType::kReplaceFullPath) {
      auto* rr = action.mutable_regex_rewrite();
      rr->mutable_pattern()->set_regex("^/.*$");
      rr->set_substitution(rule.rewrite->path.value);
    } else if (rule.rewrite->path.type == PathModifierType::kReplacePrefixMatch) {
      SetPrefixRewrite(e.match->path.value, rule.rewrite->path.value, action);
    }
  }
  for (const auto& m : rule.mirrors) {
    auto* mp = action.add_request_mirror_policies();
    mp->set_cluster(BackendCluster(m.backend, options));
    if (m.percent < 100) {
      mp->mutable_runtime_fraction()->mutable_default_value()->set_numerator(m.percent);
    }
  }
  const TrafficPolicy* tp = TrafficPolicyForRoute(policies, *e.route);
  if (tp == nullptr) tp = TrafficPolicyForService(policies, service);
  if (tp != nullptr) sources.push_back(tp->meta.source);
  ApplyRouteSettings(tp, BackendTrafficPolicy(mesh, policies, *live[0]), &rule, flavor, route);
}

}  // namespace

std::vector<const HTTPRoute*> RoutesFor(const PolicySet& policies, const discovery::Service& service,
                                        uint32_t port, const std::string& caller_ns) {
  std::vector<const HTTPRoute*> producer, consumer;
  for (const auto& route : policies.http_routes) {
    for (const auto& parent : route.parents) {
      if (parent.namespace_ != service.meta.namespace_ || parent.name != service.meta.name) continue;
      if (parent.port && *parent.port != port) continue;
      if (route.meta.namespace_ == service.meta.namespace_) {
        producer.push_back(&route);
      } else if (route.meta.namespace_ == caller_ns) {
        consumer.push_back(&route);
      }
      break;
    }
  }
  return consumer.empty() ? producer : consumer;
}

void BuildServiceRoutes(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                        const discovery::Service& service, const discovery::ServicePort& port,
                        const std::string& caller_ns, const CompilerOptions& options, RouteFlavor flavor,
                        envoy::config::route::v3::VirtualHost& vhost, std::vector<std::string>& sources) {
  std::vector<RouteEntry> entries;
  const std::vector<const HTTPRoute*> routes = RoutesFor(policies, service, port.port, caller_ns);
  for (const HTTPRoute* route : routes) {
    sources.push_back(route->meta.source);
    for (const auto& rule : route->rules) {
      for (size_t m = 0; m < rule.matches.size(); ++m) {
        // gRPC cannot match query parameters: such a match never applies.
        if (flavor == RouteFlavor::kProxyless && !rule.matches[m].query_params.empty()) continue;
        entries.push_back({route, &rule, &rule.matches[m], m});
      }
    }
  }
  if (routes.empty()) {
    Route* route = vhost.add_routes();
    route->set_name("default");
    route->mutable_match()->set_prefix("/");
    route->mutable_route()->set_cluster(
        OutboundClusterName(port.port, "", ServiceHost(service, options)));
    const TrafficPolicy* tp = TrafficPolicyForService(policies, service);
    if (tp != nullptr) sources.push_back(tp->meta.source);
    ApplyRouteSettings(tp, tp, nullptr, flavor, *route);
    return;
  }
  std::stable_sort(entries.begin(), entries.end(), Precedes);
  for (const auto& e : entries) {
    BuildRuleRoute(mesh, policies, service, e, options, flavor, *vhost.add_routes(), sources);
  }
}

}  // namespace weft::policy
