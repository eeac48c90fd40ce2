#include "policy/compiler.h"

#include <catch2/catch.hpp>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "policy/resource_types.h"

namespace weft::policy {
namespace {

using discovery::MeshSnapshot;

discovery::Service GreeterService() {
  discovery::Service svc;
  svc.meta.name = "greeter";
  svc.meta.namespace_ = "default";
  svc.meta.source = {"mesh.yaml", 0};
  svc.cluster_ip = "10.96.0.10";
  svc.selector = {{"app", "greeter"}};
  svc.ports.push_back({"grpc", 50051, 0, "", "TCP", ""});
  return svc;
}

discovery::Workload GreeterWorkload(const std::string& name, const std::string& ip, uint32_t port,
                                    const std::string& zone = "") {
  discovery::Workload w;
  w.meta.name = name;
  w.meta.namespace_ = "default";
  w.meta.labels = {{"app", "greeter"}};
  if (!zone.empty()) w.meta.labels["topology.kubernetes.io/zone"] = zone;
  w.meta.source = {"mesh.yaml", 1};
  w.address = ip;
  w.ports = {{"grpc", port}};
  return w;
}

template <typename T>
T Unpack(const ProxyResources& out, std::string_view type, const std::string& name) {
  auto type_it = out.resources.find(type);
  REQUIRE(type_it != out.resources.end());
  auto it = type_it->second.find(name);
  REQUIRE(it != type_it->second.end());
  T msg;
  REQUIRE(it->second.body->UnpackTo(&msg));
  return msg;
}

TEST_CASE("a service port compiles to an API listener, route, EDS cluster and endpoints",
          "[compiler]") {
  MeshSnapshot mesh;
  mesh.services["default/greeter"] = GreeterService();
  mesh.workloads["default/greeter-a"] = GreeterWorkload("greeter-a", "127.0.0.1", 50061);
  mesh.workloads["default/other"] = GreeterWorkload("other", "127.0.0.2", 50062);
  mesh.workloads["default/other"].meta.labels = {{"app", "other"}};

  auto out = Compile(mesh, PolicySet{}, ProxyIdentity{});
  REQUIRE(out.ok());
  const std::string host = "greeter.default.svc.cluster.local";
  const std::string cluster_name = "outbound|50051||" + host;

  auto listener = Unpack<envoy::config::listener::v3::Listener>(*out, kListenerType, host + ":50051");
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  REQUIRE(listener.api_listener().api_listener().UnpackTo(&hcm));
  CHECK(hcm.rds().route_config_name() == host + ":50051");
  CHECK(hcm.rds().config_source().has_ads());
  REQUIRE(hcm.http_filters_size() == 1);
  CHECK(hcm.http_filters(0).typed_config().type_url() ==
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");

  auto route = Unpack<envoy::config::route::v3::RouteConfiguration>(*out, kRouteType, host + ":50051");
  REQUIRE(route.virtual_hosts_size() == 1);
  const auto& domains = route.virtual_hosts(0).domains();
  CHECK(std::find(domains.begin(), domains.end(), host + ":50051") != domains.end());
  CHECK(std::find(domains.begin(), domains.end(), "greeter:50051") != domains.end());
  CHECK(std::find(domains.begin(), domains.end(), "10.96.0.10:50051") != domains.end());
  CHECK(route.virtual_hosts(0).routes(0).route().cluster() == cluster_name);

  auto cluster = Unpack<envoy::config::cluster::v3::Cluster>(*out, kClusterType, cluster_name);
  CHECK(cluster.type() == envoy::config::cluster::v3::Cluster::EDS);
  CHECK(cluster.eds_cluster_config().eds_config().has_ads());
  CHECK(cluster.eds_cluster_config().service_name() == cluster_name);

  auto cla = Unpack<envoy::config::endpoint::v3::ClusterLoadAssignment>(*out, kEndpointType, cluster_name);
  CHECK(cla.cluster_name() == cluster_name);
  REQUIRE(cla.endpoints_size() == 1);
  // gRPC ignores localities that have no weight.
  CHECK(cla.endpoints(0).load_balancing_weight().value() == 1);
  REQUIRE(cla.endpoints(0).lb_endpoints_size() == 1);
  const auto& addr = cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
  CHECK(addr.address() == "127.0.0.1");
  CHECK(addr.port_value() == 50061);

  // The source map names the manifests behind each resource.
  const auto& eds = out->resources.find(kEndpointType)->second.at(cluster_name);
  CHECK(eds.sources == std::vector<std::string>{"mesh.yaml#0", "mesh.yaml#1"});
}

TEST_CASE("EndpointSlices contribute ready endpoints of the matching port only", "[compiler]") {
  MeshSnapshot mesh;
  auto svc = GreeterService();
  svc.selector.clear();
  mesh.services["default/greeter"] = svc;
  discovery::EndpointSlice slice;
  slice.meta.name = "greeter-abc";
  slice.meta.namespace_ = "default";
  slice.service_name = "greeter";
  slice.ports.push_back({"grpc", 9000, "TCP", ""});
  discovery::Endpoint ready;
  ready.addresses = {"10.0.0.1"};
  ready.zone = "zone-b";
  discovery::Endpoint not_ready;
  not_ready.addresses = {"10.0.0.2"};
  not_ready.ready = false;
  discovery::Endpoint other_zone;
  other_zone.addresses = {"10.0.0.3", "10.0.0.4"};
  other_zone.zone = "zone-a";
  slice.endpoints = {ready, not_ready, other_zone};
  mesh.endpoint_slices["default/greeter-abc"] = slice;

  auto out = Compile(mesh, PolicySet{}, ProxyIdentity{});
  REQUIRE(out.ok());
  auto cla = Unpack<envoy::config::endpoint::v3::ClusterLoadAssignment>(
      *out, kEndpointType, "outbound|50051||greeter.default.svc.cluster.local");
  REQUIRE(cla.endpoints_size() == 2);
  CHECK(cla.endpoints(0).locality().zone() == "zone-a");
  CHECK(cla.endpoints(0).load_balancing_weight().value() == 2);
  CHECK(cla.endpoints(0).lb_endpoints_size() == 2);
  CHECK(cla.endpoints(1).locality().zone() == "zone-b");
  CHECK(cla.endpoints(1).lb_endpoints(0).endpoint().address().socket_address().port_value() == 9000);
}

TEST_CASE("compiling is deterministic and hashes change only with content", "[compiler]") {
  MeshSnapshot mesh;
  mesh.services["default/greeter"] = GreeterService();
  mesh.workloads["default/greeter-a"] = GreeterWorkload("greeter-a", "127.0.0.1", 50061);
  auto a = Compile(mesh, PolicySet{}, ProxyIdentity{});
  auto b = Compile(mesh, PolicySet{}, ProxyIdentity{});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  const std::string cluster_name = "outbound|50051||greeter.default.svc.cluster.local";
  CHECK(a->resources.at(std::string(kEndpointType)).at(cluster_name).hash ==
        b->resources.at(std::string(kEndpointType)).at(cluster_name).hash);

  mesh.workloads["default/greeter-a"].ports["grpc"] = 50062;
  auto c = Compile(mesh, PolicySet{}, ProxyIdentity{});
  REQUIRE(c.ok());
  CHECK(a->resources.at(std::string(kEndpointType)).at(cluster_name).hash !=
        c->resources.at(std::string(kEndpointType)).at(cluster_name).hash);
  // Only endpoints moved: the cluster itself is unchanged.
  CHECK(a->resources.at(std::string(kClusterType)).at(cluster_name).hash ==
        c->resources.at(std::string(kClusterType)).at(cluster_name).hash);
}

TEST_CASE("every service port gets its own listener and cluster", "[compiler]") {
  MeshSnapshot mesh;
  auto svc = GreeterService();
  svc.ports.push_back({"http", 8080, 0, "", "TCP", ""});
  mesh.services["default/greeter"] = svc;
  auto out = Compile(mesh, PolicySet{}, ProxyIdentity{});
  REQUIRE(out.ok());
  const auto& listeners = out->resources.at(std::string(kListenerType));
  CHECK(listeners.size() == 2);
  CHECK(listeners.count("greeter.default.svc.cluster.local:8080") == 1);
  CHECK(out->resources.at(std::string(kClusterType)).count("outbound|8080||greeter.default.svc.cluster.local") == 1);
  // No endpoints yet: the assignment exists and is empty.
  CHECK(out->resources.at(std::string(kEndpointType)).size() == 2);
}

}  // namespace
}  // namespace weft::policy
