#include "discovery/mesh_snapshot.h"

#include <catch2/catch.hpp>

#include "discovery/mesh_object.h"

namespace weft::discovery {
namespace {

MeshSnapshot Sample() {
  MeshSnapshot s;
  Service svc;
  svc.meta.name = "orders";
  svc.meta.namespace_ = "shop";
  svc.ports.push_back(ServicePort{"http", 80, 8080, "", "TCP", ""});
  AddToSnapshot(svc, s);
  Workload w;
  w.meta.name = "orders-0";
  w.meta.namespace_ = "shop";
  w.address = "127.0.0.1";
  w.ports["http"] = 18081;
  AddToSnapshot(w, s);
  PolicyDocument route;
  route.kind = "HTTPRoute";
  route.api_version = "gateway.networking.k8s.io/v1";
  route.meta.name = "orders";
  route.meta.namespace_ = "shop";
  route.body = {{"spec", {{"parentRefs", {{{"name", "orders"}}}}}}};
  AddToSnapshot(route, s);
  return s;
}

TEST_CASE("SourceRef and ConfigError render for users", "[mesh_snapshot]") {
  CHECK(SourceRef{"conf/mesh.yaml", 2}.ToString() == "conf/mesh.yaml#2");
  CHECK(SourceRef{"conf/mesh.yaml", -1}.ToString() == "conf/mesh.yaml");
  CHECK(SourceRef{}.ToString() == "kubernetes");

  ConfigError e;
  e.source = SourceRef{"conf/mesh.yaml", 1};
  e.kind = "Service";
  e.namespace_ = "shop";
  e.name = "orders";
  e.field = "spec.ports[0].port";
  e.reason = "must be an integer between 1 and 65535";
  CHECK(e.ToString() ==
        "conf/mesh.yaml#1: Service shop/orders: spec.ports[0].port: must be an integer between 1 "
        "and 65535");

  ConfigError syntax;
  syntax.source = SourceRef{"conf/bad.yaml", 0};
  syntax.reason = "invalid YAML: line 3, column 1: end of map not found";
  CHECK(syntax.ToString() == "conf/bad.yaml#0: invalid YAML: line 3, column 1: end of map not found");
}

TEST_CASE("ObjectKey", "[mesh_snapshot]") {
  CHECK(ObjectKey("shop", "orders") == "shop/orders");
  CHECK(ObjectKey("", "shop") == "shop");
}

TEST_CASE("SameContent ignores only the version", "[mesh_snapshot]") {
  MeshSnapshot a = Sample();
  MeshSnapshot b = Sample();
  b.version = 7;
  CHECK(SameContent(a, b));

  SECTION("a service port") {
    b.services["shop/orders"].ports[0].target_port_number = 9090;
    CHECK_FALSE(SameContent(a, b));
  }
  SECTION("a workload port") {
    b.workloads["shop/orders-0"].ports["http"] = 1;
    CHECK_FALSE(SameContent(a, b));
  }
  SECTION("a policy body") {
    b.policies["HTTPRoute/shop/orders"].body["spec"]["x"] = 1;
    CHECK_FALSE(SameContent(a, b));
  }
  SECTION("a label") {
    b.services["shop/orders"].meta.labels["app"] = "orders";
    CHECK_FALSE(SameContent(a, b));
  }
  SECTION("an error") {
    b.errors.push_back(ConfigError{});
    CHECK_FALSE(SameContent(a, b));
  }
  SECTION("an object removed") {
    b.workloads.clear();
    CHECK_FALSE(SameContent(a, b));
  }
}

TEST_CASE("AddToSnapshot keys objects by kind, namespace and name", "[mesh_snapshot]") {
  MeshSnapshot s = Sample();
  CHECK(s.services.count("shop/orders") == 1);
  CHECK(s.workloads.count("shop/orders-0") == 1);
  CHECK(s.policies.count("HTTPRoute/shop/orders") == 1);
  Namespace ns;
  ns.meta.name = "shop";
  AddToSnapshot(ns, s);
  CHECK(s.namespaces.count("shop") == 1);
  CHECK(MeshObjectKey(MeshObject(ns)) == "Namespace/shop");
  CHECK(SnapshotContains(s, MeshObject(ns)));
  RemoveFromSnapshot("HTTPRoute", "shop", "orders", s);
  CHECK(s.policies.empty());
}

}  // namespace
}  // namespace weft::discovery
