#include "policy/sidecar_compiler.h"

#include <algorithm>
#include <set>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/rbac/v3/rbac.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "policy/cluster_builder.h"
#include "policy/compiler.h"
#include "policy/endpoints.h"
#include "policy/route_builder.h"
#include "re2/re2.h"

namespace weft::policy {
namespace {

using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

constexpr char kTlsInspectorType[] = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";

void SetAds(envoy::config::core::v3::ConfigSource& source) {
  source.mutable_ads();
  source.set_resource_api_version(envoy::config::core::v3::V3);
}

void AddRouter(HttpConnectionManager& hcm) {
  auto* router = hcm.add_http_filters();
  router->set_name("envoy.filters.http.router");
  PackDeterministic(envoy::extensions::filters::http::router::v3::Router(), *router->mutable_typed_config());
}

// WebSocket upgrades pass through every sidecar HCM, both directions (Istio
// enables them by default too); other upgrade types get Envoy's 403.
void EnableWebSocket(HttpConnectionManager& hcm) { hcm.add_upgrade_configs()->set_upgrade_type("websocket"); }

void SetSocketAddress(envoy::config::core::v3::Address& address, const std::string& ip, uint32_t port) {
  address.mutable_socket_address()->set_address(ip);
  address.mutable_socket_address()->set_port_value(port);
}

// ------------------------------------------------------------- scoping

// The services a proxy may reach: all of them, unless a weft.io/dependencies
// annotation on its workload or namespace narrows it to the listed hosts
// ("name.ns", the FQDN, "ns/name", "ns/*") plus its own namespace.
class ReachableServices {
 public:
  ReachableServices(const discovery::MeshSnapshot& mesh, const std::vector<LocalWorkload>& locals,
                    const ProxyIdentity& proxy, const CompilerOptions& options)
      : own_namespace_(proxy.namespace_), cluster_domain_(options.cluster_domain) {
    std::string value;
    for (const auto& w : locals) {
      if (auto it = w.annotations.find(kDependenciesAnnotation); it != w.annotations.end()) value = it->second;
    }
    if (value.empty()) {
      if (auto ns = mesh.namespaces.find(proxy.namespace_); ns != mesh.namespaces.end()) {
        if (auto it = ns->second.meta.annotations.find(kDependenciesAnnotation); it != ns->second.meta.annotations.end()) {
          value = it->second;
        }
      }
    }
    if (value.empty()) return;
    scoped_ = true;
    for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      std::string host(absl::StripAsciiWhitespace(item));
      if (absl::EndsWith(host, "/*")) {
        namespaces_.insert(host.substr(0, host.size() - 2));
        continue;
      }
      if (auto slash = host.find('/'); slash != std::string::npos) {
        services_.insert(host.substr(0, slash) + "/" + host.substr(slash + 1));
        continue;
      }
      // name.ns[.svc[.cluster.local]]
      std::vector<std::string> parts = absl::StrSplit(host, '.');
      if (parts.size() >= 2) services_.insert(parts[1] + "/" + parts[0]);
    }
  }

  bool Contains(const discovery::Service& s) const {
    if (!scoped_ || s.meta.namespace_ == own_namespace_) return true;
    return namespaces_.count(s.meta.namespace_) > 0 || services_.count(s.meta.namespace_ + "/" + s.meta.name) > 0;
  }

 private:
  bool scoped_ = false;
  std::string own_namespace_;
  std::string cluster_domain_;
  std::set<std::string> namespaces_;
  std::set<std::string> services_;  // "ns/name"
};

// ------------------------------------------------------------ outbound

// The port a bare host (no ":port") means: 80 when the Service has it (the
// HTTP default), else its first port.
uint32_t DefaultPort(const discovery::Service& s) {
  for (const auto& p : s.ports) {
    if (p.port == 80) return 80;
  }
  return s.ports.empty() ? 0 : s.ports.front().port;
}

void AddDomains(const discovery::Service& s, uint32_t port, const std::string& caller_ns, const std::string& host,
                std::unordered_set<std::string>& taken, envoy::config::route::v3::VirtualHost& vhost) {
  std::vector<std::string> bases = {host, absl::StrCat(s.meta.name, ".", s.meta.namespace_, ".svc"),
                                    absl::StrCat(s.meta.name, ".", s.meta.namespace_)};
  // The short name means the service of the caller's own namespace.
  if (s.meta.namespace_ == caller_ns) bases.push_back(s.meta.name);
  if (!s.cluster_ip.empty() && s.cluster_ip != "None") bases.push_back(s.cluster_ip);
  const bool bare = DefaultPort(s) == port;
  for (const auto& b : bases) {
    // Envoy rejects a domain that appears in two virtual hosts.
    if (bare && taken.insert(b).second) vhost.add_domains(b);
    std::string with_port = absl::StrCat(b, ":", port);
    if (taken.insert(with_port).second) vhost.add_domains(with_port);
  }
}

void AddOutbound(const discovery::MeshSnapshot& mesh, const PolicySet& policies, const ProxyIdentity& proxy,
                 const CompilerOptions& options, const ReachableServices& reachable, ProxyResources& out) {
  HttpConnectionManager hcm;
  hcm.set_stat_prefix(kOutboundListenerName);
  EnableWebSocket(hcm);
  auto* rds = hcm.mutable_rds();
  SetAds(*rds->mutable_config_source());
  rds->set_route_config_name(kOutboundRouteName);
  // The fault filter is always present (inert without per-route config), so
  // that the listener is the same for every sidecar.
  auto* fault = hcm.add_http_filters();
  fault->set_name(kFaultFilterName);
  PackDeterministic(envoy::extensions::filters::http::fault::v3::HTTPFault(), *fault->mutable_typed_config());
  AddRouter(hcm);
  Listener listener;
  listener.set_name(kOutboundListenerName);
  SetSocketAddress(*listener.mutable_address(), options.outbound_address, options.outbound_port);
  listener.set_traffic_direction(envoy::config::core::v3::OUTBOUND);
  auto* chain = listener.add_filter_chains();
  auto* filter = chain->add_filters();
  filter->set_name("envoy.filters.network.http_connection_manager");
  PackDeterministic(hcm, *filter->mutable_typed_config());
  out.Add(listener, kOutboundListenerName, {});

  RouteConfiguration routes;
  routes.set_name(kOutboundRouteName);
  std::vector<std::string> sources;
  std::set<std::string> seen_sources;
  std::unordered_set<std::string> taken_domains;
  taken_domains.reserve(mesh.services.size() * 12);
  for (const auto& [key, service] : mesh.services) {
    if (!reachable.Contains(service)) continue;
    const std::string host = ServiceHost(service, options);
    for (const auto& port : service.ports) {
      auto* vhost = routes.add_virtual_hosts();
      vhost->set_name(absl::StrCat(host, ":", port.port));
      AddDomains(service, port.port, proxy.namespace_, host, taken_domains, *vhost);
      std::vector<std::string> vhost_sources = {service.meta.source.ToString()};
      BuildServiceRoutes(mesh, policies, service, port, proxy.namespace_, options, RouteFlavor::kSidecar, *vhost,
                         vhost_sources);
      for (auto& s : vhost_sources) {
        if (seen_sources.insert(s).second) sources.push_back(std::move(s));
      }
      AddOutboundCluster(mesh, policies, service, port, options, ClusterFlavor::kSidecar, out);
    }
  }
  out.Add(routes, kOutboundRouteName, std::move(sources));
}

// ------------------------------------------------------------- inbound

envoy::type::matcher::v3::StringMatcher PatternMatcher(const std::string& pattern) {
  envoy::type::matcher::v3::StringMatcher m;
  if (pattern == "*") {
    m.mutable_safe_regex()->set_regex(".+");
  } else if (pattern.front() == '*') {
    m.set_suffix(pattern.substr(1));
  } else if (pattern.back() == '*') {
    m.set_prefix(pattern.substr(0, pattern.size() - 1));
  } else {
    m.set_exact(pattern);
  }
  return m;
}

envoy::config::rbac::v3::Principal NamespacePrincipal(const std::string& ns, const CompilerOptions& options) {
  envoy::config::rbac::v3::Principal p;
  auto* name = p.mutable_authenticated()->mutable_principal_name();
  const std::string base = absl::StrCat("spiffe://", options.trust_domain, "/ns/");
  if (ns.find('*') == std::string::npos) {
    name->set_prefix(absl::StrCat(base, ns, "/sa/"));
  } else {
    std::string re = RE2::QuoteMeta(base);
    if (ns == "*") {
      re += "[^/]+";
    } else if (ns.front() == '*') {
      re += "[^/]*" + RE2::QuoteMeta(ns.substr(1));
    } else {
      re += RE2::QuoteMeta(ns.substr(0, ns.size() - 1)) + "[^/]*";
    }
    name->mutable_safe_regex()->set_regex(re + "/sa/[^/]+");
  }
  return p;
}

envoy::config::rbac::v3::Principal SourcePrincipal(const AuthorizationSource& src, const CompilerOptions& options) {
  envoy::config::rbac::v3::Principal out;
  auto* all = out.mutable_and_ids();
  if (!src.principals.empty()) {
    auto* any = all->add_ids()->mutable_or_ids();
    for (const auto& p : src.principals) {
      *any->add_ids()->mutable_authenticated()->mutable_principal_name() = PatternMatcher(p);
    }
  }
  if (!src.namespaces.empty()) {
    auto* any = all->add_ids()->mutable_or_ids();
    for (const auto& ns : src.namespaces) *any->add_ids() = NamespacePrincipal(ns, options);
  }
  return out;
}

envoy::config::rbac::v3::Permission OperationPermission(const AuthorizationOperation& op) {
  envoy::config::rbac::v3::Permission out;
  auto* all = out.mutable_and_rules();
  if (!op.methods.empty()) {
    auto* any = all->add_rules()->mutable_or_rules();
    for (const auto& m : op.methods) {
      auto* h = any->add_rules()->mutable_header();
      h->set_name(":method");
      h->mutable_string_match()->set_exact(m);
    }
  }
  if (!op.paths.empty()) {
    auto* any = all->add_rules()->mutable_or_rules();
    for (const auto& path : op.paths) {
      auto* rule = any->add_rules();
      if (path == "*") {
        rule->set_any(true);
      } else {
        *rule->mutable_url_path()->mutable_path() = PatternMatcher(path);
      }
    }
  }
  if (!op.ports.empty()) {
    auto* any = all->add_rules()->mutable_or_rules();
    for (uint32_t port : op.ports) any->add_rules()->set_destination_port(port);
  }
  return out;
}

void AddPolicyRules(const AuthorizationPolicy& p, const CompilerOptions& options, envoy::config::rbac::v3::RBAC& rbac) {
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const auto& rule = p.rules[i];
    envoy::config::rbac::v3::Policy policy;
    if (rule.to.empty()) {
      policy.add_permissions()->set_any(true);
    } else {
      for (const auto& op : rule.to) *policy.add_permissions() = OperationPermission(op);
    }
    if (rule.from.empty()) {
      policy.add_principals()->set_any(true);
    } else {
      for (const auto& src : rule.from) *policy.add_principals() = SourcePrincipal(src, options);
    }
    (*rbac.mutable_policies())[absl::StrCat(p.meta.namespace_, "/", p.meta.name, "/rules[", i, "]")] =
        std::move(policy);
  }
}

struct InboundFilters {
  std::vector<envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter> filters;
  std::vector<std::string> sources;
  // Per-route limits: a route matching the tag, with its own bucket.
  std::vector<std::pair<std::string, envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit>>
      route_limits;
};

// The token bucket of a RateLimitPolicy: max_tokens = requests + burst,
// refilled by `requests` every unit, enforced on every request, 429 with
// retry-after = the unit in seconds.
envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit TokenBucketLimit(
    const RateLimitPolicy& rl, const std::string& stat_prefix) {
  envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit limit;
  limit.set_stat_prefix(stat_prefix);
  limit.mutable_status()->set_code(envoy::type::v3::TooManyRequests);
  auto* bucket = limit.mutable_token_bucket();
  bucket->set_max_tokens(rl.requests + rl.burst);
  bucket->mutable_tokens_per_fill()->set_value(rl.requests);
  bucket->mutable_fill_interval()->set_seconds(rl.unit_seconds);
  for (auto* fraction : {limit.mutable_filter_enabled(), limit.mutable_filter_enforced()}) {
    fraction->set_runtime_key(fraction == limit.mutable_filter_enabled() ? "local_rate_limit_enabled"
                                                                         : "local_rate_limit_enforced");
    fraction->mutable_default_value()->set_numerator(100);
  }
  // When the bucket refills: a client should wait at most one unit.
  auto* retry_after = limit.add_response_headers_to_add();
  retry_after->mutable_header()->set_key("retry-after");
  retry_after->mutable_header()->set_value(absl::StrCat(rl.unit_seconds));
  retry_after->set_append_action(envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  return limit;
}

// DENY first, then ALLOW (only when an ALLOW policy selects the workload:
// then only matching requests pass), then the local rate limit.
InboundFilters BuildInboundFilters(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                                   const LocalWorkload& w, const CompilerOptions& options) {
  InboundFilters out;
  envoy::extensions::filters::http::rbac::v3::RBAC deny, allow;
  deny.mutable_rules()->set_action(envoy::config::rbac::v3::RBAC::DENY);
  allow.mutable_rules()->set_action(envoy::config::rbac::v3::RBAC::ALLOW);
  bool has_deny = false, has_allow = false;
  for (const AuthorizationPolicy* p : AuthorizationPoliciesFor(policies, mesh, w.namespace_, w.labels)) {
    out.sources.push_back(p->meta.source);
    if (p->action == AuthorizationAction::kDeny) {
      has_deny = true;
      AddPolicyRules(*p, options, *deny.mutable_rules());
    } else {
      has_allow = true;
      AddPolicyRules(*p, options, *allow.mutable_rules());
    }
  }
  if (has_deny) {
    out.filters.emplace_back();
    out.filters.back().set_name("envoy.filters.http.rbac.deny");
    PackDeterministic(deny, *out.filters.back().mutable_typed_config());
  }
  if (has_allow) {
    out.filters.emplace_back();
    out.filters.back().set_name("envoy.filters.http.rbac.allow");
    PackDeterministic(allow, *out.filters.back().mutable_typed_config());
  }
  if (const RateLimitPolicy* rl = RateLimitPolicyFor(policies, mesh, w.namespace_, w.labels)) {
    out.sources.push_back(rl->meta.source);
    out.filters.emplace_back();
    out.filters.back().set_name("envoy.filters.http.local_ratelimit");
    PackDeterministic(TokenBucketLimit(*rl, "inbound_local_rate_limit"),
                      *out.filters.back().mutable_typed_config());
  }
  // A second local_ratelimit filter without a bucket of its own (Envoy's
  // per-route pattern): only routes with typed_per_filter_config limit, so
  // a route's bucket adds to the workload's instead of replacing it.
  for (const RouteRateLimit& r : RouteRateLimitsFor(policies, mesh, w.namespace_, w.labels)) {
    out.sources.push_back(r.policy->meta.source);
    out.route_limits.emplace_back(absl::StrCat(r.route->meta.namespace_, "/", r.route->meta.name),
                                  TokenBucketLimit(*r.policy, "inbound_route_local_rate_limit"));
  }
  if (!out.route_limits.empty()) {
    envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit per_route_only;
    per_route_only.set_stat_prefix("inbound_route_local_rate_limit");
    out.filters.emplace_back();
    out.filters.back().set_name(kRouteRateLimitFilterName);
    PackDeterministic(per_route_only, *out.filters.back().mutable_typed_config());
  }
  return out;
}

void AddInboundChain(uint32_t port, bool tls, bool require_client_cert, bool match_transport,
                     const InboundFilters& filters, Listener& listener) {
  auto* chain = listener.add_filter_chains();
  chain->set_name(absl::StrCat("inbound|", port, "|", tls ? "mtls" : "plaintext"));
  auto* match = chain->mutable_filter_chain_match();
  match->mutable_destination_port()->set_value(port);
  if (match_transport) match->set_transport_protocol(tls ? "tls" : "raw_buffer");
  if (tls) {
    envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext ctx;
    auto* common = ctx.mutable_common_tls_context();
    auto* cert = common->add_tls_certificate_sds_secret_configs();
    cert->set_name(kWorkloadCertSecret);
    SetAds(*cert->mutable_sds_config());
    auto* ca = common->mutable_validation_context_sds_secret_config();
    ca->set_name(kRootCaSecret);
    SetAds(*ca->mutable_sds_config());
    ctx.mutable_require_client_certificate()->set_value(require_client_cert);
    chain->mutable_transport_socket()->set_name("envoy.transport_sockets.tls");
    PackDeterministic(ctx, *chain->mutable_transport_socket()->mutable_typed_config());
  }
  HttpConnectionManager hcm;
  hcm.set_stat_prefix(absl::StrCat("inbound_", port));
  EnableWebSocket(hcm);
  // x-forwarded-client-cert: By=<own ID>;URI=<peer ID> for mesh peers; a
  // header that arrived from outside is removed (DESIGN.md §3).
  if (tls) {
    hcm.set_forward_client_cert_details(HttpConnectionManager::SANITIZE_SET);
    hcm.mutable_set_current_client_cert_details()->set_uri(true);
  } else {
    hcm.set_forward_client_cert_details(HttpConnectionManager::SANITIZE);
  }
  auto* rc = hcm.mutable_route_config();
  rc->set_name(absl::StrCat("inbound|", port));
  auto* vhost = rc->add_virtual_hosts();
  vhost->set_name(absl::StrCat("inbound|", port));
  vhost->add_domains("*");
  for (const auto& [tag, limit] : filters.route_limits) {
    auto* r = vhost->add_routes();
    r->set_name(absl::StrCat("ratelimit|", tag));
    r->mutable_match()->set_prefix("/");
    auto* h = r->mutable_match()->add_headers();
    h->set_name(kRouteTagHeader);
    h->mutable_string_match()->set_exact(tag);
    r->mutable_route()->set_cluster(InboundClusterName(port));
    r->mutable_route()->mutable_timeout();
    PackDeterministic(limit, (*r->mutable_typed_per_filter_config())[kRouteRateLimitFilterName]);
  }
  auto* route = vhost->add_routes();
  route->set_name("default");
  route->mutable_match()->set_prefix("/");
  route->mutable_route()->set_cluster(InboundClusterName(port));
  route->mutable_route()->mutable_timeout();  // 0s: the caller's sidecar owns the deadline
  for (const auto& f : filters.filters) *hcm.add_http_filters() = f;
  AddRouter(hcm);
  auto* filter = chain->add_filters();
  filter->set_name("envoy.filters.network.http_connection_manager");
  PackDeterministic(hcm, *filter->mutable_typed_config());
}

void AddInbound(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                const std::vector<LocalWorkload>& locals, const CompilerOptions& options, ProxyResources& out) {
  Listener listener;
  listener.set_name(kInboundListenerName);
  SetSocketAddress(*listener.mutable_address(), options.inbound_address, options.inbound_port);
  listener.set_traffic_direction(envoy::config::core::v3::INBOUND);
  std::vector<std::string> sources;
  std::set<uint32_t> done;
  bool any_tls = false;
  for (const auto& w : locals) {
    sources.push_back(w.source);
    const MtlsMode mode = MtlsModeFor(policies, w.namespace_, w.labels);
    for (const auto& p : policies.mtls_policies) {
      if (p.meta.namespace_ == w.namespace_ || p.meta.namespace_ == policies.root_namespace) {
        sources.push_back(p.meta.source);
      }
    }
    InboundFilters filters = BuildInboundFilters(mesh, policies, w, options);
    sources.insert(sources.end(), filters.sources.begin(), filters.sources.end());
    for (const auto& [port, port_sources] : w.ports) {
      if (!done.insert(port).second) continue;  // two local workloads on one port: the first wins
      sources.insert(sources.end(), port_sources.begin(), port_sources.end());
      if (mode != MtlsMode::kDisable) {
        AddInboundChain(port, true, true, true, filters, listener);
        any_tls = true;
      }
      if (mode != MtlsMode::kStrict) {
        AddInboundChain(port, false, false, mode == MtlsMode::kPermissive, filters, listener);
      }
      envoy::config::cluster::v3::Cluster cluster;
      const std::string name = InboundClusterName(port);
      cluster.set_name(name);
      cluster.set_type(envoy::config::cluster::v3::Cluster::STATIC);
      cluster.mutable_connect_timeout()->set_seconds(10);
      auto* cla = cluster.mutable_load_assignment();
      cla->set_cluster_name(name);
      SetSocketAddress(*cla->add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address(), "127.0.0.1",
                       port);
      out.Add(cluster, name, port_sources);
    }
  }
  if (listener.filter_chains_size() == 0) return;  // no Service sends this proxy traffic
  if (any_tls) {
    // Tells TLS from plaintext (filter_chain_match.transport_protocol).
    auto* inspector = listener.add_listener_filters();
    inspector->set_name("envoy.filters.listener.tls_inspector");
    inspector->mutable_typed_config()->set_type_url(kTlsInspectorType);
  }
  std::sort(sources.begin(), sources.end());
  sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
  out.Add(listener, kInboundListenerName, std::move(sources));
}

}  // namespace

std::string InboundClusterName(uint32_t port) { return absl::StrCat("inbound|", port, "||"); }

std::vector<LocalWorkload> LocalWorkloads(const discovery::MeshSnapshot& mesh, const ProxyIdentity& proxy) {
  std::vector<LocalWorkload> out;
  if (proxy.ip.empty()) return out;
  for (const auto& [key, w] : mesh.workloads) {
    if (w.address != proxy.ip || w.meta.namespace_ != proxy.namespace_ || w.service_account != proxy.service_account) {
      continue;
    }
    LocalWorkload local{w.meta.namespace_, w.meta.labels, w.meta.annotations, w.meta.source.ToString(), {}};
    for (const auto& [skey, s] : mesh.services) {
      if (s.meta.namespace_ != w.meta.namespace_ || s.selector.empty() || !LabelsMatch(s.selector, w.meta.labels)) {
        continue;
      }
      for (const auto& port : s.ports) {
        uint32_t p = WorkloadPort(w, port);
        if (p != 0) local.ports[p].push_back(s.meta.source.ToString());
      }
    }
    out.push_back(std::move(local));
  }
  for (const auto& [key, pod] : mesh.pods) {
    if (pod.pod_ip != proxy.ip || pod.meta.namespace_ != proxy.namespace_ ||
        pod.service_account != proxy.service_account) {
      continue;
    }
    LocalWorkload local{pod.meta.namespace_, pod.meta.labels, pod.meta.annotations, pod.meta.source.ToString(), {}};
    // The Pod's ports are what its Services' EndpointSlices say for its IP.
    for (const auto& [skey, slice] : mesh.endpoint_slices) {
      if (slice.meta.namespace_ != pod.meta.namespace_) continue;
      bool listed = false;
      for (const auto& ep : slice.endpoints) {
        listed = listed || std::find(ep.addresses.begin(), ep.addresses.end(), pod.pod_ip) != ep.addresses.end();
      }
      if (!listed) continue;
      for (const auto& p : slice.ports) {
        if (p.port != 0) local.ports[p.port].push_back(slice.meta.source.ToString());
      }
    }
    out.push_back(std::move(local));
  }
  for (auto& w : out) {
    for (auto& [port, sources] : w.ports) {
      std::sort(sources.begin(), sources.end());
      sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
    }
  }
  return out;
}

void CompileSidecar(const discovery::MeshSnapshot& mesh, const PolicySet& policies, const ProxyIdentity& proxy,
                    const CompilerOptions& options, ProxyResources& out) {
  std::vector<LocalWorkload> locals = LocalWorkloads(mesh, proxy);
  ReachableServices reachable(mesh, locals, proxy, options);
  AddOutbound(mesh, policies, proxy, options, reachable, out);
  AddInbound(mesh, policies, locals, options, out);
}

}  // namespace weft::policy
