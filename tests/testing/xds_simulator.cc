#include "tests/testing/xds_simulator.h"

#include <algorithm>

#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "policy/resource_types.h"
#include "re2/re2.h"

namespace weft::testing {
namespace {

using envoy::config::route::v3::HeaderMatcher;
using envoy::config::route::v3::RouteConfiguration;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::type::matcher::v3::StringMatcher;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool MatchString(const StringMatcher& m, const std::string& value) {
  std::string v = m.ignore_case() ? Lower(value) : value;
  auto norm = [&](const std::string& s) { return m.ignore_case() ? Lower(s) : s; };
  switch (m.match_pattern_case()) {
    case StringMatcher::kExact: return v == norm(m.exact());
    case StringMatcher::kPrefix: return v.rfind(norm(m.prefix()), 0) == 0;
    case StringMatcher::kSuffix:
      return v.size() >= m.suffix().size() && v.compare(v.size() - m.suffix().size(), std::string::npos, norm(m.suffix())) == 0;
    case StringMatcher::kContains: return v.find(norm(m.contains())) != std::string::npos;
    case StringMatcher::kSafeRegex: return RE2::FullMatch(value, RE2(m.safe_regex().regex()));
    default: return false;
  }
}

struct RequestView {
  std::string path;   // without the query
  std::map<std::string, std::string> query;
  const SimRequest* request;
  std::optional<std::string> Header(const std::string& name) const {
    if (name == ":method") return request->method;
    if (name == ":path") return request->path;
    if (name == ":authority" || name == "host") return request->host;
    auto it = request->headers.find(Lower(name));
    if (it == request->headers.end()) return std::nullopt;
    return it->second;
  }
};

RequestView View(const SimRequest& r) {
  RequestView v;
  v.request = &r;
  size_t q = r.path.find('?');
  v.path = r.path.substr(0, q);
  if (q != std::string::npos) {
    std::string rest = r.path.substr(q + 1);
    size_t start = 0;
    while (start <= rest.size()) {
      size_t amp = rest.find('&', start);
      std::string kv = rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      size_t eq = kv.find('=');
      if (!kv.empty()) v.query[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
  }
  return v;
}

bool MatchHeader(const HeaderMatcher& h, const RequestView& v) {
  auto value = v.Header(h.name());
  bool matched;
  switch (h.header_match_specifier_case()) {
    case HeaderMatcher::kStringMatch: matched = value && MatchString(h.string_match(), *value); break;
    case HeaderMatcher::kPresentMatch: matched = value.has_value() == h.present_match(); break;
    default: matched = false; break;  // deprecated forms: Weft never emits them
  }
  return h.invert_match() ? !matched : matched;
}

bool MatchRoute(const envoy::config::route::v3::RouteMatch& m, const RequestView& v) {
  using RM = envoy::config::route::v3::RouteMatch;
  switch (m.path_specifier_case()) {
    case RM::kPrefix:
      if (v.path.rfind(m.prefix(), 0) != 0) return false;
      break;
    case RM::kPath:
      if (v.path != m.path()) return false;
      break;
    case RM::kPathSeparatedPrefix: {
      const std::string& p = m.path_separated_prefix();
      if (v.path.rfind(p, 0) != 0) return false;
      if (v.path.size() > p.size() && v.path[p.size()] != '/') return false;
      break;
    }
    case RM::kSafeRegex:
      if (!RE2::FullMatch(v.path, RE2(m.safe_regex().regex()))) return false;
      break;
    default: return false;
  }
  for (const auto& h : m.headers()) {
    if (!MatchHeader(h, v)) return false;
  }
  for (const auto& q : m.query_parameters()) {
    auto it = v.query.find(q.name());
    if (q.has_present_match()) {
      if ((it != v.query.end()) != q.present_match()) return false;
    } else if (it == v.query.end() || !MatchString(q.string_match(), it->second)) {
      return false;
    }
  }
  return true;
}

int64_t Millis(const google::protobuf::Duration& d) { return d.seconds() * 1000 + d.nanos() / 1000000; }

template <typename T>
bool Find(const policy::ProxyResources& resources, std::string_view type, const std::string& name, T& out) {
  auto t = resources.resources.find(type);
  if (t == resources.resources.end()) return false;
  auto it = t->second.find(name);
  return it != t->second.end() && it->second.body->UnpackTo(&out);
}

// ---- RBAC ----

struct RbacContext {
  const RequestView* request;
  uint32_t port;
  const std::string* principal;
};

bool MatchPermission(const envoy::config::rbac::v3::Permission& p, const RbacContext& c) {
  using P = envoy::config::rbac::v3::Permission;
  switch (p.rule_case()) {
    case P::kAny: return p.any();
    case P::kAndRules:
      return std::all_of(p.and_rules().rules().begin(), p.and_rules().rules().end(),
                         [&](const P& r) { return MatchPermission(r, c); });
    case P::kOrRules:
      return std::any_of(p.or_rules().rules().begin(), p.or_rules().rules().end(),
                         [&](const P& r) { return MatchPermission(r, c); });
    case P::kNotRule: return !MatchPermission(p.not_rule(), c);
    case P::kHeader: return MatchHeader(p.header(), *c.request);
    case P::kUrlPath: return MatchString(p.url_path().path(), c.request->path);
    case P::kDestinationPort: return p.destination_port() == c.port;
    default: return false;
  }
}

bool MatchPrincipal(const envoy::config::rbac::v3::Principal& p, const RbacContext& c) {
  using Pr = envoy::config::rbac::v3::Principal;
  switch (p.identifier_case()) {
    case Pr::kAny: return p.any();
    case Pr::kAndIds:
      return std::all_of(p.and_ids().ids().begin(), p.and_ids().ids().end(),
                         [&](const Pr& r) { return MatchPrincipal(r, c); });
    case Pr::kOrIds:
      return std::any_of(p.or_ids().ids().begin(), p.or_ids().ids().end(),
                         [&](const Pr& r) { return MatchPrincipal(r, c); });
    case Pr::kNotId: return !MatchPrincipal(p.not_id(), c);
    case Pr::kAuthenticated:
      if (c.principal->empty()) return false;
      return !p.authenticated().has_principal_name() || MatchString(p.authenticated().principal_name(), *c.principal);
    case Pr::kHeader: return MatchHeader(p.header(), *c.request);
    default: return false;
  }
}

// The name of the first matching policy, or "".
std::string MatchingPolicy(const envoy::config::rbac::v3::RBAC& rbac, const RbacContext& c) {
  std::map<std::string, const envoy::config::rbac::v3::Policy*> sorted;
  for (const auto& [name, policy] : rbac.policies()) sorted[name] = &policy;
  for (const auto& [name, policy] : sorted) {
    bool perm = std::any_of(policy->permissions().begin(), policy->permissions().end(),
                            [&](const auto& p) { return MatchPermission(p, c); });
    bool princ = std::any_of(policy->principals().begin(), policy->principals().end(),
                             [&](const auto& p) { return MatchPrincipal(p, c); });
    if (perm && princ) return name;
  }
  return "";
}

}  // namespace

RouteDecision TraceRoutes(const RouteConfiguration& routes, const SimRequest& request) {
  RouteDecision d;
  const envoy::config::route::v3::VirtualHost* vhost = nullptr;
  const std::string host = Lower(request.host);
  for (const auto& vh : routes.virtual_hosts()) {
    for (const auto& domain : vh.domains()) {
      if (domain == host && vhost == nullptr) vhost = &vh;
    }
  }
  if (vhost == nullptr) {
    for (const auto& vh : routes.virtual_hosts()) {
      for (const auto& domain : vh.domains()) {
        if (domain == "*" && vhost == nullptr) vhost = &vh;
      }
    }
  }
  if (vhost == nullptr) return d;
  d.virtual_host = vhost->name();
  RequestView view = View(request);
  for (const auto& route : vhost->routes()) {
    if (!MatchRoute(route.match(), view)) continue;
    d.route = route.name();
    d.matched = route;
    if (route.has_direct_response()) {
      d.status = static_cast<int>(route.direct_response().status());
    } else if (route.has_redirect()) {
      using RA = envoy::config::route::v3::RedirectAction;
      switch (route.redirect().response_code()) {
        case RA::MOVED_PERMANENTLY: d.status = 301; break;
        case RA::SEE_OTHER: d.status = 303; break;
        case RA::TEMPORARY_REDIRECT: d.status = 307; break;
        case RA::PERMANENT_REDIRECT: d.status = 308; break;
        default: d.status = 302; break;
      }
    } else if (route.has_route()) {
      const auto& action = route.route();
      if (action.has_weighted_clusters()) {
        for (const auto& c : action.weighted_clusters().clusters()) d.clusters.emplace_back(c.name(), c.weight().value());
      } else {
        d.clusters.emplace_back(action.cluster(), 1);
      }
      if (action.has_timeout()) d.timeout_ms = Millis(action.timeout());
      if (action.has_max_stream_duration() && action.max_stream_duration().has_max_stream_duration()) {
        d.timeout_ms = Millis(action.max_stream_duration().max_stream_duration());
      }
      d.status = 200;
    }
    d.has_fault = route.typed_per_filter_config().count("envoy.filters.http.fault") > 0;
    return d;
  }
  d.status = 404;
  return d;
}

RouteDecision TraceOutbound(const policy::ProxyResources& resources, const SimRequest& request) {
  RouteConfiguration routes;
  if (!Find(resources, policy::kRouteType, "outbound", routes)) return {};
  return TraceRoutes(routes, request);
}

RouteDecision TraceProxyless(const policy::ProxyResources& resources, const std::string& listener,
                             const SimRequest& request) {
  envoy::config::listener::v3::Listener l;
  HttpConnectionManager hcm;
  RouteConfiguration routes;
  if (!Find(resources, policy::kListenerType, listener, l) || !l.api_listener().api_listener().UnpackTo(&hcm) ||
      !Find(resources, policy::kRouteType, hcm.rds().route_config_name(), routes)) {
    return {};
  }
  return TraceRoutes(routes, request);
}

InboundDecision TraceInbound(const policy::ProxyResources& resources, const SimConnection& connection,
                             const SimRequest& request, uint32_t request_number) {
  InboundDecision d;
  envoy::config::listener::v3::Listener listener;
  if (!Find(resources, policy::kListenerType, "inbound", listener)) return d;
  const std::string transport = connection.tls ? "tls" : "raw_buffer";
  const envoy::config::listener::v3::FilterChain* chain = nullptr;
  int best = -1;
  for (const auto& fc : listener.filter_chains()) {
    const auto& m = fc.filter_chain_match();
    if (m.has_destination_port() && m.destination_port().value() != connection.port) continue;
    if (!m.transport_protocol().empty() && m.transport_protocol() != transport) continue;
    int score = (m.has_destination_port() ? 2 : 0) + (m.transport_protocol().empty() ? 0 : 1);
    if (score > best) {
      best = score;
      chain = &fc;
    }
  }
  if (chain == nullptr) return d;
  // A plaintext chain cannot take a TLS handshake, and a TLS chain that
  // requires a client certificate refuses a peer without one.
  bool chain_tls = chain->has_transport_socket();
  if (chain_tls != connection.tls) return d;
  if (chain_tls) {
    envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext ctx;
    chain->transport_socket().typed_config().UnpackTo(&ctx);
    if (ctx.require_client_certificate().value() && connection.peer_principal.empty()) return d;
  }
  d.connected = true;
  d.filter_chain = chain->name();
  HttpConnectionManager hcm;
  if (chain->filters_size() == 0 || !chain->filters(0).typed_config().UnpackTo(&hcm)) return d;
  RequestView view = View(request);
  const std::string principal = connection.tls ? connection.peer_principal : "";
  RbacContext ctx{&view, connection.port, &principal};
  for (const auto& filter : hcm.http_filters()) {
    const auto& type = filter.typed_config().type_url();
    if (type == "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC") {
      envoy::extensions::filters::http::rbac::v3::RBAC rbac;
      filter.typed_config().UnpackTo(&rbac);
      std::string matched = MatchingPolicy(rbac.rules(), ctx);
      bool allow = rbac.rules().action() == envoy::config::rbac::v3::RBAC::ALLOW;
      if (allow ? matched.empty() : !matched.empty()) {
        d.status = 403;
        d.denied_by = filter.name() + (matched.empty() ? "" : " " + matched);
        return d;
      }
    } else if (type == "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit") {
      envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit limit;
      filter.typed_config().UnpackTo(&limit);
      // A route's typed_per_filter_config for this filter replaces its config.
      const RouteDecision route = TraceRoutes(hcm.route_config(), request);
      if (auto it = route.matched.typed_per_filter_config().find(filter.name());
          it != route.matched.typed_per_filter_config().end()) {
        it->second.UnpackTo(&limit);
        d.rate_limited_route = route.route;
      }
      if (!limit.has_token_bucket()) continue;  // limits per route only
      d.rate_limit_tokens = limit.token_bucket().max_tokens();
      for (const auto& h : limit.response_headers_to_add()) {
        if (h.header().key() == "retry-after") d.retry_after = h.header().value();
      }
      if (request_number > limit.token_bucket().max_tokens()) {
        d.status = limit.has_status() ? static_cast<int>(limit.status().code()) : 429;
        return d;
      }
    }
  }
  RouteDecision r = TraceRoutes(hcm.route_config(), request);
  d.status = r.status;
  if (!r.clusters.empty()) d.cluster = r.clusters.front().first;
  return d;
}

}  // namespace weft::testing
