#include "proxy/proxy_config.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

namespace weft::proxy {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::listener::v3::Listener;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
using envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;

constexpr char kHcmName[] = "envoy.filters.network.http_connection_manager";
constexpr char kTlsSocket[] = "envoy.transport_sockets.tls";

class Errors {
 public:
  void Add(std::string what) { errors_.push_back(std::move(what)); }
  bool empty() const { return errors_.empty(); }
  std::string Join() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

uint64_t DurationMs(const google::protobuf::Duration& d) {
  return static_cast<uint64_t>(d.seconds()) * 1000 + static_cast<uint64_t>(d.nanos()) / 1000000;
}

template <typename T>
bool Unpack(const google::protobuf::Any& any, T& out) {
  return any.Is<T>() && out.ParseFromString(any.value());
}

std::optional<HttpConnectionManager> FindHcm(const envoy::config::listener::v3::FilterChain& chain,
                                             const std::string& path, Errors& errors) {
  for (int i = 0; i < chain.filters_size(); ++i) {
    const auto& f = chain.filters(i);
    if (f.name() != kHcmName && !f.typed_config().Is<HttpConnectionManager>()) {
      errors.Add(absl::StrCat(path, ".filters[", i, "]: unsupported network filter \"", f.name(), "\""));
      continue;
    }
    HttpConnectionManager hcm;
    if (!Unpack(f.typed_config(), hcm)) {
      errors.Add(absl::StrCat(path, ".filters[", i, "].typed_config: not an HttpConnectionManager"));
      continue;
    }
    return hcm;
  }
  errors.Add(path + ": no http_connection_manager filter");
  return std::nullopt;
}

// An HCM's upgrade_configs and stream_idle_timeout (both directions).
void BuildUpgrades(const HttpConnectionManager& hcm, const std::string& path, UpgradePolicy& upgrades,
                   uint64_t& stream_idle_ms, Errors& errors) {
  auto parsed = UpgradePolicy::FromHcm(hcm, path);
  if (parsed.ok()) {
    upgrades = std::move(*parsed);
  } else {
    errors.Add(std::string(parsed.status().message()));
  }
  if (hcm.has_stream_idle_timeout()) stream_idle_ms = DurationMs(hcm.stream_idle_timeout());
}

void BuildInbound(const Listener& listener, std::map<uint32_t, InboundPort>& out, Errors& errors) {
  for (int i = 0; i < listener.filter_chains_size(); ++i) {
    const auto& fc = listener.filter_chains(i);
    std::string path = absl::StrCat("Listener ", listener.name(), ": filter_chains[", i, "]");
    InboundChain chain;
    chain.name = fc.name();
    const auto& m = fc.filter_chain_match();
    if (!m.has_destination_port()) {
      errors.Add(path + ".filter_chain_match.destination_port: required by weft-proxy");
      continue;
    }
    uint32_t port = m.destination_port().value();
    const std::string& tp = m.transport_protocol();
    if (tp != "" && tp != "tls" && tp != "raw_buffer") {
      errors.Add(path + ".filter_chain_match.transport_protocol: \"" + tp + "\" is not supported");
      continue;
    }
    if (fc.has_transport_socket()) {
      if (fc.transport_socket().name() != kTlsSocket) {
        errors.Add(path + ".transport_socket: only " + std::string(kTlsSocket) + " is supported");
        continue;
      }
      DownstreamTlsContext tls;
      if (!Unpack(fc.transport_socket().typed_config(), tls)) {
        errors.Add(path + ".transport_socket.typed_config: not a DownstreamTlsContext");
        continue;
      }
      chain.tls = true;
      chain.require_client_certificate =
          !tls.has_require_client_certificate() || tls.require_client_certificate().value();
    }
    if (tp == "tls" && !chain.tls) {
      errors.Add(path + ": transport_protocol tls without a TLS transport_socket");
      continue;
    }
    auto hcm = FindHcm(fc, path, errors);
    if (!hcm) continue;
    if (!hcm->has_route_config()) {
      errors.Add(path + ": the inbound HttpConnectionManager needs an inline route_config");
      continue;
    }
    auto routes = RouteTable::Create(hcm->route_config());
    if (!routes.ok()) {
      errors.Add(path + ".route_config: " + std::string(routes.status().message()));
      continue;
    }
    chain.routes = *routes;
    chain.set_client_cert_header = hcm->forward_client_cert_details() == HttpConnectionManager::SANITIZE_SET;
    BuildUpgrades(*hcm, path, chain.upgrades, chain.stream_idle_timeout_ms, errors);
    for (int j = 0; j < hcm->http_filters_size(); ++j) {
      const auto& f = hcm->http_filters(j);
      if (f.disabled()) continue;
      bool known = false;
      auto filter = CreateInboundHttpFilter(f, known);
      if (!filter.ok()) {
        errors.Add(absl::StrCat(path, ".http_filters[", j, "] (", f.name(), "): ", filter.status().message()));
      } else if (*filter) {
        chain.filters.push_back(std::move(**filter));
      } else if (!known) {
        chain.unenforced_filters.push_back(f.name());
      }
    }
    InboundPort& p = out[port];
    std::optional<InboundChain>& slot = chain.tls ? p.mtls : p.plaintext;
    if (slot) {
      errors.Add(absl::StrCat(path, ": a second ", chain.tls ? "TLS" : "plaintext", " chain for port ", port));
      continue;
    }
    slot = std::move(chain);
  }
}

void BuildCluster(const Cluster& c, ClusterEntry& out, Errors& errors) {
  const std::string path = "Cluster " + c.name();
  out.name = c.name();
  switch (c.type()) {
    case Cluster::EDS: out.eds = true; break;
    case Cluster::STATIC: out.eds = false; break;
    default: errors.Add(path + ".type: only EDS and STATIC are supported"); break;
  }
  switch (c.lb_policy()) {
    case Cluster::LEAST_REQUEST: out.lb = LbPolicy::kLeastRequest; break;
    case Cluster::RANDOM: out.lb = LbPolicy::kRandom; break;
    default: out.lb = LbPolicy::kRoundRobin; break;  // RING_HASH/MAGLEV: not yet, round robin (docs/proxy.md)
  }
  if (c.has_connect_timeout()) {
    out.connect_timeout_ms = c.connect_timeout().seconds() * 1000 + c.connect_timeout().nanos() / 1000000;
    if (out.connect_timeout_ms == 0) out.connect_timeout_ms = 10000;
  }
  if (c.has_circuit_breakers()) {
    auto breakers = ParseCircuitBreakers(c.circuit_breakers(), path + ".circuit_breakers");
    if (breakers.ok()) {
      out.breakers = *breakers;
    } else {
      errors.Add(std::string(breakers.status().message()));
    }
  }
  if (c.has_outlier_detection()) {
    auto outlier = ParseOutlierDetection(c.outlier_detection(), path + ".outlier_detection");
    if (outlier.ok()) {
      out.outlier = *outlier;
    } else {
      errors.Add(std::string(outlier.status().message()));
    }
  }
  if (c.has_transport_socket()) {
    if (c.transport_socket().name() != kTlsSocket) {
      errors.Add(path + ".transport_socket: only " + std::string(kTlsSocket) + " is supported");
    } else {
      UpstreamTlsContext tls;
      if (!Unpack(c.transport_socket().typed_config(), tls)) {
        errors.Add(path + ".transport_socket.typed_config: not an UpstreamTlsContext");
      } else {
        out.tls = true;
        out.sni = tls.sni();
        const auto& ctx = tls.common_tls_context();
        const envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext* vc = nullptr;
        if (ctx.has_combined_validation_context()) {
          vc = &ctx.combined_validation_context().default_validation_context();
        } else if (ctx.has_validation_context()) {
          vc = &ctx.validation_context();
        }
        if (vc != nullptr) {
          for (int i = 0; i < vc->match_typed_subject_alt_names_size(); ++i) {
            const auto& san = vc->match_typed_subject_alt_names(i);
            using SanType = envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher;
            if (san.san_type() != SanType::URI || !san.matcher().has_exact()) {
              errors.Add(absl::StrCat(path, ".match_typed_subject_alt_names[", i, "]: only URI exact matches are supported"));
              continue;
            }
            out.expected_sans.push_back(san.matcher().exact());
          }
        }
      }
    }
  }
  if (!out.eds) {
    for (const auto& loc : c.load_assignment().endpoints()) {
      for (const auto& lb : loc.lb_endpoints()) {
        const auto& sa = lb.endpoint().address().socket_address();
        out.static_endpoints.push_back({sa.address(), sa.port_value()});
      }
    }
  }
}

// The outbound HCM's fault filter and idle timeout.
void BuildOutboundFilters(const HttpConnectionManager& hcm, FaultConfigConstSharedPtr& fault_out,
                          uint64_t& idle_ms, Errors& errors) {
  if (hcm.has_common_http_protocol_options() && hcm.common_http_protocol_options().has_idle_timeout()) {
    idle_ms = DurationMs(hcm.common_http_protocol_options().idle_timeout());
  }
  for (int j = 0; j < hcm.http_filters_size(); ++j) {
    const auto& f = hcm.http_filters(j);
    envoy::extensions::filters::http::fault::v3::HTTPFault fault;
    if (f.name() != "envoy.filters.http.fault" && !f.typed_config().Is<decltype(fault)>()) continue;
    const std::string path =
        absl::StrCat("Listener outbound: filter_chains[0].http_filters[", j, "] (", f.name(), ")");
    if (!Unpack(f.typed_config(), fault)) {
      errors.Add(path + ".typed_config: not an HTTPFault");
      continue;
    }
    auto parsed = ParseFault(fault, path);
    if (!parsed.ok()) {
      errors.Add(std::string(parsed.status().message()));
    } else if ((*parsed)->active()) {
      fault_out = *parsed;
    }
  }
}

}  // namespace

absl::StatusOr<std::optional<InboundHttpFilter>> CreateInboundHttpFilter(
    const envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter& f, bool& known) {
  known = true;
  const std::string& type = f.typed_config().type_url();
  auto is = [&](std::string_view message) {
    return type.size() > message.size() && type.compare(type.size() - message.size(), message.size(), message) == 0 &&
           type[type.size() - message.size() - 1] == '/';
  };
  if (is("envoy.extensions.filters.http.rbac.v3.RBAC")) {
    envoy::extensions::filters::http::rbac::v3::RBAC proto;
    if (!Unpack(f.typed_config(), proto)) return absl::InvalidArgumentError("typed_config: not an RBAC");
    auto rbac = RbacFilterConfig::Create(proto, f.name());
    if (!rbac.ok()) return rbac.status();
    return InboundHttpFilter{f.name(), *rbac, nullptr};
  }
  if (is("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit")) {
    envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit proto;
    if (!Unpack(f.typed_config(), proto)) return absl::InvalidArgumentError("typed_config: not a LocalRateLimit");
    auto limit = LocalRateLimitConfig::Create(proto);
    if (!limit.ok()) return limit.status();
    return InboundHttpFilter{f.name(), nullptr, *limit};
  }
  // The router is the data path itself; the fault filter acts on outbound
  // routes' per-route config only (weftd puts none inbound).
  if (f.name() == "envoy.filters.http.router" || f.name() == "envoy.filters.http.fault" ||
      is("envoy.extensions.filters.http.router.v3.Router") || is("envoy.extensions.filters.http.fault.v3.HTTPFault")) {
    return std::nullopt;
  }
  known = false;
  return std::nullopt;
}

const std::map<std::string, XdsResources::Entry>* XdsResources::Type(const std::string& type_url) const {
  auto it = by_type.find(type_url);
  return it == by_type.end() ? nullptr : &it->second;
}

std::string EndpointAddress::Key() const {
  return ip.find(':') != std::string::npos ? absl::StrCat("[", ip, "]:", port) : absl::StrCat(ip, ":", port);
}

std::string ShortType(const std::string& type_url) {
  if (type_url == kClusterType) return "cds";
  if (type_url == kEndpointType) return "eds";
  if (type_url == kListenerType) return "lds";
  if (type_url == kRouteType) return "rds";
  if (type_url == kSecretType) return "sds";
  return type_url;
}

absl::StatusOr<ProxyConfigConstSharedPtr> ProxyConfig::Build(XdsResources resources) {
  auto config = std::make_shared<ProxyConfig>();
  Errors errors;

  if (const auto* listeners = resources.Type(kListenerType)) {
    for (const auto& [name, entry] : *listeners) {
      Listener l;
      if (!Unpack(entry.resource, l)) {
        errors.Add("Listener " + name + ": not a Listener");
        continue;
      }
      if (l.name() == "outbound") {
        config->has_outbound_ = true;
        if (l.filter_chains_size() != 1) {
          errors.Add("Listener outbound: exactly one filter chain is supported");
          continue;
        }
        auto hcm = FindHcm(l.filter_chains(0), "Listener outbound: filter_chains[0]", errors);
        if (!hcm) continue;
        BuildOutboundFilters(*hcm, config->outbound_fault_, config->downstream_idle_timeout_ms_, errors);
        BuildUpgrades(*hcm, "Listener outbound: filter_chains[0]", config->outbound_upgrades_,
                      config->outbound_stream_idle_timeout_ms_, errors);
        if (hcm->has_rds()) {
          config->outbound_rds_name_ = hcm->rds().route_config_name();
        } else if (hcm->has_route_config()) {
          auto routes = RouteTable::Create(hcm->route_config());
          if (!routes.ok()) {
            errors.Add("Listener outbound: route_config: " + std::string(routes.status().message()));
          } else {
            config->outbound_routes_ = *routes;
          }
        } else {
          errors.Add("Listener outbound: the HttpConnectionManager needs rds or route_config");
        }
      } else if (l.name() == "inbound") {
        config->has_inbound_ = true;
        BuildInbound(l, config->inbound_, errors);
      }
      // Other listeners (another proxy's shape) are kept but not served.
    }
  }
  if (const auto* routes = resources.Type(kRouteType)) {
    for (const auto& [name, entry] : *routes) {
      envoy::config::route::v3::RouteConfiguration rc;
      if (!Unpack(entry.resource, rc)) {
        errors.Add("RouteConfiguration " + name + ": not a RouteConfiguration");
        continue;
      }
      auto table = RouteTable::Create(rc);
      if (!table.ok()) {
        errors.Add(std::string(table.status().message()));
        continue;
      }
      if (name == config->outbound_rds_name_) config->outbound_routes_ = *table;
    }
  }
  if (const auto* clusters = resources.Type(kClusterType)) {
    for (const auto& [name, entry] : *clusters) {
      Cluster c;
      if (!Unpack(entry.resource, c)) {
        errors.Add("Cluster " + name + ": not a Cluster");
        continue;
      }
      ClusterEntry ce;
      BuildCluster(c, ce, errors);
      if (!ce.eds) config->endpoints_[ce.name] = ce.static_endpoints;
      config->clusters_[ce.name] = std::move(ce);
    }
  }
  if (const auto* cla = resources.Type(kEndpointType)) {
    for (const auto& [name, entry] : *cla) {
      ClusterLoadAssignment a;
      if (!Unpack(entry.resource, a)) {
        errors.Add("ClusterLoadAssignment " + name + ": not a ClusterLoadAssignment");
        continue;
      }
      std::vector<EndpointAddress> eps;
      for (int i = 0; i < a.endpoints_size(); ++i) {
        for (int j = 0; j < a.endpoints(i).lb_endpoints_size(); ++j) {
          const auto& lb = a.endpoints(i).lb_endpoints(j);
          using HS = envoy::config::core::v3::HealthStatus;
          if (lb.health_status() == HS::UNHEALTHY || lb.health_status() == HS::DRAINING) continue;
          const auto& sa = lb.endpoint().address().socket_address();
          if (sa.address().empty() || sa.port_value() == 0 || sa.port_value() > 65535) {
            errors.Add(absl::StrCat("ClusterLoadAssignment ", name, ": endpoints[", i, "].lb_endpoints[", j,
                                    "]: needs a socket address with a port"));
            continue;
          }
          eps.push_back({sa.address(), sa.port_value()});
        }
      }
      config->endpoints_[name] = std::move(eps);
    }
  }
  for (const auto& [cluster, eps] : config->endpoints_) {
    auto c = config->clusters_.find(cluster);
    if (c == config->clusters_.end() || !c->second.eds) continue;
    for (const auto& ep : eps) config->endpoint_cluster_.emplace(ep.Key(), cluster);
  }
  if (const auto* secrets = resources.Type(kSecretType)) {
    for (const auto& [name, entry] : *secrets) {
      envoy::extensions::transport_sockets::tls::v3::Secret s;
      if (!Unpack(entry.resource, s)) {
        errors.Add("Secret " + name + ": not a Secret");
        continue;
      }
      if (name != "ROOTCA") continue;  // "default" is always the proxy's own
      if (!s.has_validation_context()) {
        errors.Add("Secret ROOTCA: needs validation_context");
        continue;
      }
      const auto& ca = s.validation_context().trusted_ca();
      std::string pem = ca.has_inline_bytes() ? ca.inline_bytes() : ca.inline_string();
      if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        errors.Add("Secret ROOTCA: validation_context.trusted_ca: needs inline PEM certificates");
        continue;
      }
      config->root_ca_pem_ = pem;
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(errors.Join());
  config->resources_ = std::move(resources);
  return ProxyConfigConstSharedPtr(std::move(config));
}

const ClusterEntry* ProxyConfig::FindCluster(const std::string& name) const {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : &it->second;
}

const std::vector<EndpointAddress>* ProxyConfig::Endpoints(const std::string& cluster) const {
  auto it = endpoints_.find(cluster);
  return it == endpoints_.end() ? nullptr : &it->second;
}

const ClusterEntry* ProxyConfig::ClusterOfEndpoint(const std::string& key) const {
  auto it = endpoint_cluster_.find(key);
  return it == endpoint_cluster_.end() ? nullptr : FindCluster(it->second);
}

const InboundPort* ProxyConfig::Inbound(uint32_t port) const {
  auto it = inbound_.find(port);
  return it == inbound_.end() ? nullptr : &it->second;
}

std::vector<std::string> ReferencedRouteNames(const XdsResources& resources) {
  std::set<std::string> names;
  if (const auto* listeners = resources.Type(kListenerType)) {
    for (const auto& [name, entry] : *listeners) {
      Listener l;
      if (!Unpack(entry.resource, l)) continue;
      for (const auto& fc : l.filter_chains()) {
        for (const auto& f : fc.filters()) {
          HttpConnectionManager hcm;
          if (Unpack(f.typed_config(), hcm) && hcm.has_rds()) names.insert(hcm.rds().route_config_name());
        }
      }
    }
  }
  return {names.begin(), names.end()};
}

std::vector<std::string> ReferencedEndpointNames(const XdsResources& resources) {
  std::set<std::string> names;
  if (const auto* clusters = resources.Type(kClusterType)) {
    for (const auto& [name, entry] : *clusters) {
      Cluster c;
      if (!Unpack(entry.resource, c) || c.type() != Cluster::EDS) continue;
      names.insert(c.eds_cluster_config().service_name().empty() ? c.name() : c.eds_cluster_config().service_name());
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace weft::proxy
