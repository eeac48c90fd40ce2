#include "policy/compiler.h"

#include "absl/strings/str_cat.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "policy/cluster_builder.h"
#include "policy/resource_types.h"
#include "policy/route_builder.h"
#include "policy/sidecar_compiler.h"

namespace weft::policy {
namespace {

using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

void SetAds(envoy::config::core::v3::ConfigSource& source) {
  source.mutable_ads();
  source.set_resource_api_version(envoy::config::core::v3::V3);
}

// The hosts a caller may use for a service port: FQDN, name.ns.svc, name.ns,
// the short name, and the ClusterIP, each with and without the port.
std::vector<std::string> ServiceDomains(const discovery::Service& service, uint32_t port,
                                        const std::string& host) {
  std::vector<std::string> bases = {host,
                                    absl::StrCat(service.meta.name, ".", service.meta.namespace_, ".svc"),
                                    absl::StrCat(service.meta.name, ".", service.meta.namespace_),
                                    service.meta.name};
  if (!service.cluster_ip.empty() && service.cluster_ip != "None") bases.push_back(service.cluster_ip);
  std::vector<std::string> domains;
  for (const auto& b : bases) {
    domains.push_back(b);
    domains.push_back(absl::StrCat(b, ":", port));
  }
  return domains;
}

// Proxyless gRPC: an API listener per service port (named HOST:PORT, like
// its RouteConfiguration), routes with the HTTPRoute semantics gRPC
// supports, and EDS clusters without TLS. No RBAC: gRPC NACKs client
// listeners that carry it.
void AddProxylessServicePort(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                             const discovery::Service& service, const discovery::ServicePort& port,
                             const ProxyIdentity& proxy, const CompilerOptions& options, ProxyResources& out) {
  const std::string host = ServiceHost(service, options);
  const std::string listener_name = absl::StrCat(host, ":", port.port);
  const std::string service_source = service.meta.source.ToString();

  // API listener: gRPC's xDS client reads only the HttpConnectionManager.
  HttpConnectionManager hcm;
  hcm.set_stat_prefix(listener_name);
  auto* rds = hcm.mutable_rds();
  SetAds(*rds->mutable_config_source());
  rds->set_route_config_name(listener_name);
  auto* router = hcm.add_http_filters();
  router->set_name("envoy.filters.http.router");
  PackDeterministic(envoy::extensions::filters::http::router::v3::Router(), *router->mutable_typed_config());
  Listener listener;
  listener.set_name(listener_name);
  PackDeterministic(hcm, *listener.mutable_api_listener()->mutable_api_listener());
  out.Add(listener, listener_name, {service_source});

  RouteConfiguration route_config;
  route_config.set_name(listener_name);
  auto* vhost = route_config.add_virtual_hosts();
  vhost->set_name(listener_name);
  for (const auto& d : ServiceDomains(service, port.port, host)) vhost->add_domains(d);
  std::vector<std::string> sources = {service_source};
  BuildServiceRoutes(mesh, policies, service, port, proxy.namespace_, options, RouteFlavor::kProxyless, *vhost,
                     sources);
  out.Add(route_config, listener_name, std::move(sources));

  AddOutboundCluster(mesh, policies, service, port, options, ClusterFlavor::kProxyless, out);
}

}  // namespace

std::string ServiceHost(const discovery::Service& service, const CompilerOptions& options) {
  return absl::StrCat(service.meta.name, ".", service.meta.namespace_, ".svc.", options.cluster_domain);
}

std::string OutboundClusterName(uint32_t port, const std::string& subset, const std::string& host) {
  return absl::StrCat("outbound|", port, "|", subset, "|", host);
}

absl::StatusOr<ProxyResources> Compile(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                                       const ProxyIdentity& proxy, const CompilerOptions& options) {
  ProxyResources out;
  // Make sure every type is present, even when empty: a state-of-the-world
  // response for a type with no resources is still a valid answer.
  out.resources[std::string(kListenerType)];
  out.resources[std::string(kRouteType)];
  out.resources[std::string(kClusterType)];
  out.resources[std::string(kEndpointType)];
  if (proxy.kind == ProxyIdentity::Kind::kSidecar) {
    CompileSidecar(mesh, policies, proxy, options, out);
    return out;
  }
  for (const auto& [key, service] : mesh.services) {
    for (const auto& port : service.ports) {
      AddProxylessServicePort(mesh, policies, service, port, proxy, options, out);
    }
  }
  return out;
}

}  // namespace weft::policy
