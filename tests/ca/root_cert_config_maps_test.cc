// ConfigMap weft-ca-root-cert in every meshed namespace, against the fake
// API server over real HTTP: created, updated on a new bundle, restored when
// edited, recreated when deleted, added for a new namespace.
#include "ca/root_cert_config_maps.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/ca/kube_http.h"
#include "tests/fake_kube/kube_test_support.h"

namespace weft::ca {
namespace {

struct Fixture {
  fake_kube::FakeApiServer api;
  discovery::KubeClientPtr client;
  common::MetricsRegistry metrics;

  Fixture() {
    REQUIRE(api.Start().ok());
    for (const char* ns : {"shop", "ops", "outside"})
      REQUIRE(api.Create(fake_kube::NamespaceObject(ns)).ok());
    client = fake_kube::ClientFor(api);
  }
  KubeHttp Http() { return testing::KubeHttpOver(*client); }
  // The bundle in namespace `ns`, "" when there is no ConfigMap.
  std::string Bundle(const std::string& ns) {
    auto cm = api.Get("v1", "ConfigMap", ns, "weft-ca-root-cert");
    if (!cm) return "";
    return (*cm)["data"].value("root-cert.pem", "");
  }
};

TEST_CASE("ConfigMaps weft-ca-root-cert follow the bundle and the meshed namespaces", "[ca][configmap]") {
  Fixture f;
  RootCertConfigMaps maps(f.Http(), f.metrics);
  maps.SetNamespaces({"shop", "ops"});
  REQUIRE(maps.Sync().ok());
  CHECK(f.Bundle("shop").empty());  // no bundle yet: nothing written

  maps.SetBundle("ROOT-A\n");
  REQUIRE(maps.Sync().ok());
  CHECK(f.Bundle("shop") == "ROOT-A\n");
  CHECK(f.Bundle("ops") == "ROOT-A\n");
  CHECK(f.Bundle("outside").empty());  // not selected
  auto cm = f.api.Get("v1", "ConfigMap", "shop", "weft-ca-root-cert");
  CHECK((*cm)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "weftd");

  SECTION("a rotation's bundle replaces it everywhere") {
    maps.SetBundle("ROOT-A\nROOT-B\n");
    REQUIRE(maps.Sync().ok());
    CHECK(f.Bundle("shop") == "ROOT-A\nROOT-B\n");
    CHECK(f.Bundle("ops") == "ROOT-A\nROOT-B\n");
  }
  SECTION("an edited ConfigMap is restored, a deleted one recreated") {
    auto edited = *cm;
    edited["data"] = {{"root-cert.pem", "EVIL"}, {"extra", "x"}};
    REQUIRE(f.api.Update(edited).ok());
    REQUIRE(f.api.Delete("v1", "ConfigMap", "ops", "weft-ca-root-cert").ok());
    REQUIRE(maps.Sync().ok());
    CHECK(f.Bundle("shop") == "ROOT-A\n");
    CHECK(f.api.Get("v1", "ConfigMap", "shop", "weft-ca-root-cert").value()["data"].size() == 1);
    CHECK(f.Bundle("ops") == "ROOT-A\n");
  }
  SECTION("a namespace joining the mesh gets one; nothing is rewritten when all is current") {
    const uint64_t before = f.api.resource_version();
    REQUIRE(maps.Sync().ok());
    CHECK(f.api.resource_version() == before);
    maps.SetNamespaces({"shop", "ops", "outside"});
    REQUIRE(maps.Sync().ok());
    CHECK(f.Bundle("outside") == "ROOT-A\n");
  }
  SECTION("a namespace leaving the mesh loses weftd's ConfigMap, never someone else's") {
    maps.SetNamespaces({"shop"});  // ops leaves
    REQUIRE(maps.Sync().ok());
    CHECK_FALSE(f.api.Get("v1", "ConfigMap", "ops", "weft-ca-root-cert").has_value());
    CHECK(f.Bundle("shop") == "ROOT-A\n");
    CHECK(f.metrics.GetCounter("weft_ca_root_cert_configmap_writes_total", "", {{"op", "delete"}}).Value() ==
          1);
    // Back in the mesh: recreated.
    maps.SetNamespaces({"shop", "ops"});
    REQUIRE(maps.Sync().ok());
    CHECK(f.Bundle("ops") == "ROOT-A\n");
    // A ConfigMap of that name that weftd did not make stays when shop leaves.
    REQUIRE(f.api.Delete("v1", "ConfigMap", "shop", "weft-ca-root-cert").ok());
    REQUIRE(f.api
                .Create(nlohmann::json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "weft-ca-root-cert", "namespace": "shop"}, "data": {"root-cert.pem": "MINE"}})"))
                .ok());
    maps.SetNamespaces({"ops"});
    REQUIRE(maps.Sync().ok());
    CHECK(f.Bundle("shop") == "MINE");
    CHECK(f.Bundle("ops") == "ROOT-A\n");
  }
  SECTION("a namespace that does not exist is an error naming it; the others still sync") {
    maps.SetNamespaces({"gone", "shop"});
    maps.SetBundle("ROOT-C\n");
    absl::Status s = maps.Sync();
    CHECK_FALSE(s.ok());
    CHECK(std::string(s.message()).find("gone/weft-ca-root-cert") != std::string::npos);
    CHECK(f.Bundle("shop") == "ROOT-C\n");
  }
}

TEST_CASE("the background loop syncs on a change and on resync", "[ca][configmap]") {
  Fixture f;
  RootCertConfigMaps maps(f.Http(), f.metrics, std::chrono::seconds(1));
  maps.SetNamespaces({"shop"});
  maps.SetBundle("ROOT-A\n");
  maps.Start();
  REQUIRE(fake_kube::Eventually([&] { return f.Bundle("shop") == "ROOT-A\n"; }, std::chrono::seconds(10)));
  REQUIRE(f.api.Delete("v1", "ConfigMap", "shop", "weft-ca-root-cert").ok());
  CHECK(fake_kube::Eventually([&] { return f.Bundle("shop") == "ROOT-A\n"; }, std::chrono::seconds(10)));
  maps.Stop();
}

}  // namespace
}  // namespace weft::ca
