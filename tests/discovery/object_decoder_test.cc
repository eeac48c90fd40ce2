#include "discovery/object_decoder.h"

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace weft::discovery {
namespace {

using nlohmann::json;

const SourceRef kSource{"conf/mesh.yaml", 3};

// "field: reason" of every error, for compact assertions.
std::vector<std::string> Problems(const DecodeResult& r) {
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.field + ": " + e.reason);
  return out;
}

bool HasProblem(const DecodeResult& r, const std::string& field, const std::string& reason_part) {
  return std::any_of(r.errors.begin(), r.errors.end(), [&](const ConfigError& e) {
    return e.field == field && e.reason.find(reason_part) != std::string::npos;
  });
}

TEST_CASE("decodes a Service", "[object_decoder]") {
  json j = json::parse(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "orders", "namespace": "shop", "labels": {"app": "orders"},
                 "resourceVersion": "42", "generation": 3},
    "spec": {"clusterIP": "10.0.0.7", "selector": {"app": "orders"},
             "ports": [{"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"},
                       {"name": "grpc", "port": 9090, "targetPort": "grpc-port", "protocol": "TCP"}]}
  })");
  DecodeResult r = DecodeObject(j, kSource);
  REQUIRE(r.decoded());
  const auto& svc = std::get<Service>(*r.object);
  CHECK(svc.meta.name == "orders");
  CHECK(svc.meta.namespace_ == "shop");
  CHECK(svc.meta.labels.at("app") == "orders");
  CHECK(svc.meta.resource_version == "42");
  CHECK(svc.meta.generation == 3);
  CHECK(svc.meta.source == kSource);
  CHECK(svc.cluster_ip == "10.0.0.7");
  CHECK(svc.selector.at("app") == "orders");
  REQUIRE(svc.ports.size() == 2);
  CHECK(svc.ports[0] == ServicePort{"http", 80, 8080, "", "TCP", "http"});
  CHECK(svc.ports[1] == ServicePort{"grpc", 9090, 0, "grpc-port", "TCP", ""});
}

TEST_CASE("namespace defaults to default", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},
                      "spec":{"ports":[{"port":80}]}})"),
                                kSource);
  REQUIRE(r.decoded());
  CHECK(std::get<Service>(*r.object).meta.namespace_ == "default");
  CHECK(r.namespace_ == "default");
}

TEST_CASE("collects every Service error with its field path", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "Orders_Svc", "namespace": "shop", "labels": {"version": 1}},
    "spec": {"clusterIP": "not-an-ip",
             "ports": [{"name": "http", "port": 0},
                       {"name": "http", "port": "80", "targetPort": 70000, "protocol": "HTTP"},
                       {"port": 81, "targetPort": "8080"}]}
  })"),
                                kSource);
  CHECK(r.outcome == DecodeResult::Outcome::kInvalid);
  CHECK_FALSE(r.object.has_value());
  CAPTURE(Problems(r));
  CHECK(HasProblem(r, "metadata.name", "RFC 1035"));
  CHECK(HasProblem(r, "metadata.labels.version", "must be a string"));
  CHECK(HasProblem(r, "spec.clusterIP", "IP address"));
  CHECK(HasProblem(r, "spec.ports[0].port", "must be an integer between 1 and 65535"));
  CHECK(HasProblem(r, "spec.ports[1].name", "duplicate port name"));
  CHECK(HasProblem(r, "spec.ports[1].port", "must be an integer between 1 and 65535"));
  CHECK(HasProblem(r, "spec.ports[1].targetPort", "between 1 and 65535 or a port name"));
  CHECK(HasProblem(r, "spec.ports[1].protocol", "TCP, UDP or SCTP"));
  CHECK(HasProblem(r, "spec.ports[2].name", "more than one port"));
  CHECK(HasProblem(r, "spec.ports[2].targetPort", "or a port name"));
  CHECK(r.errors.size() == 10);
  for (const ConfigError& e : r.errors) {
    CHECK(e.source == kSource);
    CHECK(e.kind == "Service");
    CHECK(e.namespace_ == "shop");
    CHECK(e.name == "Orders_Svc");
  }
}

TEST_CASE("metadata.name is required", "[object_decoder]") {
  DecodeResult r = DecodeObject(
      json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"shop"}})"), kSource);
  CHECK(r.outcome == DecodeResult::Outcome::kInvalid);
  CHECK(Problems(r) == std::vector<std::string>{"metadata.name: required"});
  r = DecodeObject(json::parse(R"({"apiVersion":"v1","kind":"Pod"})"), kSource);
  CHECK(Problems(r) == std::vector<std::string>{"metadata: required"});
}

TEST_CASE("decodes an EndpointSlice", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "orders-abc", "namespace": "shop",
                 "labels": {"kubernetes.io/service-name": "orders"}},
    "addressType": "IPv4",
    "ports": [{"name": "http", "port": 8080, "appProtocol": "http"}],
    "endpoints": [
      {"addresses": ["10.1.0.5"], "conditions": {"ready": true},
       "nodeName": "node-1", "zone": "eu-1a", "targetRef": {"kind": "Pod", "name": "orders-0"}},
      {"addresses": ["10.1.0.6"], "conditions": {"ready": false, "terminating": true}},
      {"addresses": ["10.1.0.7"]}
    ]
  })"),
                                kSource);
  CAPTURE(Problems(r));
  REQUIRE(r.decoded());
  const auto& slice = std::get<EndpointSlice>(*r.object);
  CHECK(slice.service_name == "orders");
  CHECK(slice.address_type == "IPv4");
  REQUIRE(slice.ports.size() == 1);
  CHECK(slice.ports[0].port == 8080);
  CHECK(slice.ports[0].app_protocol == "http");
  REQUIRE(slice.endpoints.size() == 3);
  CHECK(slice.endpoints[0].addresses == std::vector<std::string>{"10.1.0.5"});
  CHECK(slice.endpoints[0].ready);
  CHECK(slice.endpoints[0].node_name == "node-1");
  CHECK(slice.endpoints[0].zone == "eu-1a");
  CHECK(slice.endpoints[0].target_pod == "orders-0");
  CHECK_FALSE(slice.endpoints[1].ready);
  CHECK_FALSE(slice.endpoints[1].serving);
  CHECK(slice.endpoints[1].terminating);
  CHECK(slice.endpoints[2].ready);  // absent conditions mean ready
  CHECK(slice.endpoints[2].serving);
}

TEST_CASE("EndpointSlice errors", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "orders-abc", "namespace": "shop"},
    "addressType": "IPv5",
    "ports": [{"name": "http", "port": 123456}],
    "endpoints": [{"addresses": []}, {"addresses": ["10.1.0.300"], "conditions": {"ready": "yes"}},
                  {"conditions": {}}]
  })"),
                                kSource);
  CAPTURE(Problems(r));
  CHECK(r.outcome == DecodeResult::Outcome::kInvalid);
  CHECK(HasProblem(r, "metadata.labels[\"kubernetes.io/service-name\"]", "required"));
  CHECK(HasProblem(r, "addressType", "IPv4, IPv6 or FQDN"));
  CHECK(HasProblem(r, "ports[0].port", "between 1 and 65535"));
  CHECK(HasProblem(r, "endpoints[0].addresses", "at least one address"));
  CHECK(HasProblem(r, "endpoints[1].addresses[0]", "IPv4 address"));
  CHECK(HasProblem(r, "endpoints[1].conditions.ready", "true or false"));
  CHECK(HasProblem(r, "endpoints[2].addresses", "required"));
  CHECK(r.errors.size() == 7);
}

TEST_CASE("decodes a Workload", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({
    "apiVersion": "weft.io/v1alpha1", "kind": "Workload",
    "metadata": {"name": "orders-v1-0", "namespace": "shop", "labels": {"app": "orders"}},
    "spec": {"address": "127.0.0.1", "ports": {"http": 18081}}
  })"),
                                kSource);
  REQUIRE(r.decoded());
  const auto& w = std::get<Workload>(*r.object);
  CHECK(w.address == "127.0.0.1");
  CHECK(w.ports == std::map<std::string, uint32_t>{{"http", 18081}});
  CHECK(w.service_account == "default");

  r = DecodeObject(json::parse(R"({
    "apiVersion": "weft.io/v1alpha1", "kind": "Workload",
    "metadata": {"name": "orders-v1-0", "namespace": "shop"},
    "spec": {"address": "orders.local", "ports": {"http": "18081"}, "serviceAccount": "Bad SA"}
  })"),
                   kSource);
  CAPTURE(Problems(r));
  CHECK(HasProblem(r, "spec.address", "must be an IP address"));
  CHECK(HasProblem(r, "spec.ports.http", "must be an integer between 1 and 65535"));
  CHECK(HasProblem(r, "spec.serviceAccount", "RFC 1123"));
  CHECK(r.errors.size() == 3);

  r = DecodeObject(json::parse(R"({"apiVersion": "weft.io/v1alpha1", "kind": "Workload",
                                   "metadata": {"name": "w"}})"),
                   kSource);
  CHECK(Problems(r) == std::vector<std::string>{"spec: required"});
}

TEST_CASE("decodes a Pod", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "orders-0", "namespace": "shop", "labels": {"app": "orders"}},
    "spec": {"serviceAccountName": "orders", "containers": [{"name": "app"}]},
    "status": {"podIP": "10.1.0.5",
               "conditions": [{"type": "Initialized", "status": "True"},
                              {"type": "Ready", "status": "True"}]}
  })"),
                                kSource);
  REQUIRE(r.decoded());
  const auto& pod = std::get<Pod>(*r.object);
  CHECK(pod.pod_ip == "10.1.0.5");
  CHECK(pod.service_account == "orders");
  CHECK(pod.ready);

  r = DecodeObject(json::parse(R"({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "orders-1"},
    "status": {"conditions": [{"type": "Ready", "status": "False"}]}})"),
                   kSource);
  REQUIRE(r.decoded());
  CHECK_FALSE(std::get<Pod>(*r.object).ready);
  CHECK(std::get<Pod>(*r.object).service_account == "default");
  CHECK(std::get<Pod>(*r.object).pod_ip.empty());
}

TEST_CASE("decodes policy documents and Namespaces", "[object_decoder]") {
  for (const char* version : {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"}) {
    json j = {{"apiVersion", version},
              {"kind", "HTTPRoute"},
              {"metadata", {{"name", "orders"}, {"namespace", "shop"}}},
              {"spec", {{"parentRefs", {{{"kind", "Service"}, {"name", "orders"}}}}}}};
    DecodeResult r = DecodeObject(j, kSource);
    REQUIRE(r.decoded());
    const auto& doc = std::get<PolicyDocument>(*r.object);
    CHECK(doc.kind == "HTTPRoute");
    CHECK(doc.api_version == version);
    CHECK(doc.meta.namespace_ == "shop");
    CHECK(doc.body == j);
  }
  for (const char* kind : {"TrafficPolicy", "AuthorizationPolicy", "RateLimitPolicy", "MTLSPolicy"}) {
    json j = {{"apiVersion", "weft.io/v1alpha1"},
              {"kind", kind},
              {"metadata", {{"name", "p"}}},
              {"spec", json::object()}};
    DecodeResult r = DecodeObject(j, kSource);
    REQUIRE(r.decoded());
    CHECK(KindOf(*r.object) == kind);
  }
  DecodeResult r = DecodeObject(
      json::parse(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}})"), kSource);
  REQUIRE(r.decoded());
  CHECK(std::get<Namespace>(*r.object).meta.namespace_.empty());
}

TEST_CASE("apiVersion and kind", "[object_decoder]") {
  auto decode = [](const std::string& api_version, const std::string& kind) {
    return DecodeObject(json{{"apiVersion", api_version},
                             {"kind", kind},
                             {"metadata", {{"name", "x"}, {"namespace", "shop"}}},
                             {"spec", json::object()}},
                        kSource);
  };
  CHECK(decode("apps/v1", "Deployment").ignored());
  CHECK(decode("v1", "ConfigMap").ignored());
  CHECK(decode("gateway.networking.k8s.io/v1", "Gateway").ignored());
  CHECK(decode("example.com/v1", "Service").ignored());  // someone else's Service kind

  DecodeResult r = decode("gateway.networking.k8s.io/v1alpha2", "HTTPRoute");
  CHECK(r.outcome == DecodeResult::Outcome::kInvalid);
  CHECK(HasProblem(r, "apiVersion", "use gateway.networking.k8s.io/v1 or"));
  CHECK(r.kind == "HTTPRoute");
  CHECK(r.name == "x");
  r = decode("discovery.k8s.io/v1beta1", "EndpointSlice");
  CHECK(HasProblem(r, "apiVersion", "not supported"));
  r = decode("weft.io/v1alpha1", "TraficPolicy");
  CHECK(HasProblem(r, "kind", "unknown kind \"TraficPolicy\""));
  r = decode("weft.io/v1", "TrafficPolicy");
  CHECK(HasProblem(r, "apiVersion", "use weft.io/v1alpha1"));

  r = DecodeObject(json::parse(R"({"metadata": {"name": "x"}})"), kSource);
  CHECK(Problems(r) == std::vector<std::string>{"apiVersion: required", "kind: required"});
  r = DecodeObject(json::parse(R"([1, 2])"), kSource);
  CHECK(r.outcome == DecodeResult::Outcome::kInvalid);
  CHECK(r.errors.size() == 1);
}

TEST_CASE("Kubernetes objects carry a Kubernetes source", "[object_decoder]") {
  DecodeResult r = DecodeObject(json::parse(R"({"apiVersion":"v1","kind":"Service",
      "metadata":{"name":"a","namespace":"shop"},"spec":{"ports":[{"port":0}]}})"),
                                SourceRef{});
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].ToString() ==
        "kubernetes: Service shop/a: spec.ports[0].port: must be an integer between 1 and 65535");
}

}  // namespace
}  // namespace weft::discovery
