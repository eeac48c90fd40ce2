#include "policy/compiler.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "policy/endpoints.h"
#include "policy/resource_types.h"

namespace weft::policy {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
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

void AddProxylessServicePort(const discovery::MeshSnapshot& mesh, const discovery::Service& service,
                             const discovery::ServicePort& port, const CompilerOptions& options,
                             ProxyResources& out) {
  const std::string host = ServiceHost(service, options);
  const std::string listener_name = absl::StrCat(host, ":", port.port);
  const std::string cluster_name = OutboundClusterName(port.port, "", host);
  const std::string service_source = service.meta.source.ToString();

  // API listener: gRPC's xDS client reads only the HttpConnectionManager.
  HttpConnectionManager hcm;
  hcm.set_stat_prefix(listener_name);
  auto* rds = hcm.mutable_rds();
  SetAds(*rds->mutable_config_source());
  rds->set_route_config_name(listener_name);
  auto* router = hcm.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  Listener listener;
  listener.set_name(listener_name);
  listener.mutable_api_listener()->mutable_api_listener()->PackFrom(hcm);
  out.Add(listener, listener_name, {service_source});

  RouteConfiguration route_config;
  route_config.set_name(listener_name);
  auto* vhost = route_config.add_virtual_hosts();
  vhost->set_name(listener_name);
  for (const auto& d : ServiceDomains(service, port.port, host)) vhost->add_domains(d);
  auto* route = vhost->add_routes();
  route->set_name("default");
  route->mutable_match()->set_prefix("/");
  route->mutable_route()->set_cluster(cluster_name);
  out.Add(route_config, listener_name, {service_source});

  Cluster cluster;
  cluster.set_name(cluster_name);
  cluster.set_type(Cluster::EDS);
  SetAds(*cluster.mutable_eds_cluster_config()->mutable_eds_config());
  cluster.mutable_eds_cluster_config()->set_service_name(cluster_name);
  cluster.set_lb_policy(Cluster::ROUND_ROBIN);
  cluster.mutable_connect_timeout()->set_seconds(10);
  out.Add(cluster, cluster_name, {service_source});

  ClusterLoadAssignment cla;
  cla.set_cluster_name(cluster_name);
  std::vector<std::string> sources = {service_source};
  std::set<std::string> seen_sources;
  envoy::config::endpoint::v3::LocalityLbEndpoints* locality = nullptr;
  std::string current_zone;
  for (const auto& ep : ResolveEndpoints(mesh, service, port)) {
    if (locality == nullptr || ep.zone != current_zone) {
      locality = cla.add_endpoints();
      current_zone = ep.zone;
      // gRPC rejects a locality entry without the locality field.
      auto* where = locality->mutable_locality();
      if (!ep.zone.empty()) where->set_zone(ep.zone);
      locality->mutable_load_balancing_weight()->set_value(0);
    }
    auto* lb = locality->add_lb_endpoints();
    auto* addr = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    addr->set_address(ep.address);
    addr->set_port_value(ep.port);
    lb->set_health_status(envoy::config::core::v3::HEALTHY);
    lb->mutable_load_balancing_weight()->set_value(1);
    // gRPC ignores a locality without a weight; weigh each by its endpoint
    // count so every endpoint gets an equal share.
    locality->mutable_load_balancing_weight()->set_value(
        locality->load_balancing_weight().value() + 1);
    if (seen_sources.insert(ep.source).second) sources.push_back(ep.source);
  }
  out.Add(cla, cluster_name, std::move(sources));
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
  (void)policies;
  ProxyResources out;
  // Make sure every type is present, even when empty: a state-of-the-world
  // response for a type with no resources is still a valid answer.
  out.resources[std::string(kListenerType)];
  out.resources[std::string(kRouteType)];
  out.resources[std::string(kClusterType)];
  out.resources[std::string(kEndpointType)];
  for (const auto& [key, service] : mesh.services) {
    for (const auto& port : service.ports) {
      AddProxylessServicePort(mesh, service, port, options, out);
    }
  }
  (void)proxy;  // sidecar-specific output comes with weft-proxy (issue 7)
  return out;
}

}  // namespace weft::policy
