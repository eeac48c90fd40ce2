// The CA kept in a Kubernetes Secret (--ca-secret), against the fake API
// server over real HTTP through the discovery module's KubeClient: created
// on first start, loaded after a restart (a certificate issued before it
// verifies after it), one root when two replicas start at once, and
// optimistic concurrency on every write.
#include "ca/kube_secret_ca_store.h"

#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/escaping.h"
#include "ca/csr_signer.h"
#include "ca/root_rotator.h"
#include "common/clock.h"
#include "tests/ca/kube_http.h"
#include "tests/ca/test_ca.h"
#include "tests/fake_kube/kube_test_support.h"

namespace weft::ca {
namespace {

using namespace testing;

struct Fixture {
  fake_kube::FakeApiServer api;
  discovery::KubeClientPtr client;
  common::FakeClock clock;

  Fixture() {
    REQUIRE(api.Start().ok());
    REQUIRE(api.Create(fake_kube::NamespaceObject("weft-system")).ok());
    client = fake_kube::ClientFor(api);
  }

  KubeHttp Http() { return testing::KubeHttpOver(*client); }
  std::unique_ptr<KubeSecretCaStore> Store() {
    return KubeSecretCaStore::Create("weft-system/weft-ca", Http()).value();
  }
  RootRotatorPtr Open(CaStore& store) {
    auto r = RootRotator::Open(store, clock, RotatorOptions{});
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return std::move(*r);
  }
};

std::string RootPem(const RootRotator& rotator) { return rotator.Current()->roots_pem.at(0); }

TEST_CASE("Secret store: a new CA is written to the Secret and survives a restart", "[ca][kube_secret]") {
  Fixture f;
  auto store = f.Store();
  CHECK(store->Describe() == "Secret weft-system/weft-ca");
  auto rotator = f.Open(*store);

  auto secret = f.api.Get("v1", "Secret", "weft-system", "weft-ca");
  REQUIRE(secret.has_value());
  CHECK((*secret)["type"] == "Opaque");
  for (const char* key : {"root-cert.pem", "root-key.pem", "ca-cert.pem", "ca-key.pem", "cert-chain.pem"}) {
    INFO(key);
    REQUIRE((*secret)["data"].contains(key));
    std::string decoded;
    CHECK(absl::Base64Unescape((*secret)["data"][key].get<std::string>(), &decoded));
    CHECK(decoded.find("-----BEGIN") == 0);
  }
  std::string root_in_secret;
  absl::Base64Unescape((*secret)["data"]["root-cert.pem"].get<std::string>(), &root_in_secret);
  CHECK(root_in_secret == RootPem(*rotator));

  // A leaf issued before the restart verifies against the bundle after it.
  const WallTime now = f.clock.WallNow();
  auto issued = CsrSigner().SignCsr(CsrFor("spiffe://cluster.local/ns/shop/sa/orders"),
                                    {"cluster.local", "shop", "orders"}, std::chrono::seconds(0),
                                    *rotator->Current()->signing, now);
  REQUIRE(issued.ok());
  rotator.reset();
  store.reset();

  auto again = f.Store();
  auto reopened = f.Open(*again);
  CHECK(RootPem(*reopened) == root_in_secret);
  std::vector<X509Ptr> roots = Share(reopened->Current()->roots);
  CHECK(VerifyChainPem(issued->chain_pem, roots, now).ok());
  // The second start created nothing: one create, no update.
  auto log = f.api.RequestLog();
  CHECK(std::count_if(log.begin(), log.end(), [](const std::string& l) {
          return l.rfind("POST /api/v1/namespaces/weft-system/secrets", 0) == 0;
        }) == 1);
}

TEST_CASE("Secret store: two replicas starting at once end up with one root", "[ca][kube_secret]") {
  Fixture f;
  SECTION("interleaved by hand: the first writer wins, the loser loads its CA") {
    auto a = f.Store();
    auto b = f.Store();
    REQUIRE(a->Load({"root-cert.pem"}).value().empty());
    REQUIRE(b->Load({"root-cert.pem"}).value().empty());
    REQUIRE(a->Save({{"root-cert.pem", "A"}}, {}).ok());
    absl::Status lost = b->Save({{"root-cert.pem", "B"}}, {});
    CHECK(lost.code() == absl::StatusCode::kAborted);
    CHECK(b->Load({"root-cert.pem"}).value().at("root-cert.pem") == "A");
  }
  SECTION("two rotators on two stores, concurrently") {
    auto a = f.Store();
    auto b = f.Store();
    RootRotatorPtr ra, rb;
    std::thread ta([&] { ra = RootRotator::Open(*a, f.clock, RotatorOptions{}).value(); });
    std::thread tb([&] { rb = RootRotator::Open(*b, f.clock, RotatorOptions{}).value(); });
    ta.join();
    tb.join();
    REQUIRE(ra);
    REQUIRE(rb);
    CHECK(RootPem(*ra) == RootPem(*rb));
  }
  SECTION("a rotator whose create lost the race loads the winner's CA") {
    // Another replica creates its CA between this one's read and its write.
    RootRotatorPtr winner;
    std::unique_ptr<KubeSecretCaStore> winner_store = f.Store();
    KubeHttp http = f.Http();
    auto racing = KubeSecretCaStore::Create("weft-system/weft-ca", [&](const std::string& method,
                                                                       const std::string& path,
                                                                       const std::string& body) {
                    if (method == "POST" && !winner) winner = f.Open(*winner_store);
                    return http(method, path, body);
                  }).value();
    auto loser = f.Open(*racing);
    REQUIRE(winner);
    CHECK(RootPem(*loser) == RootPem(*winner));
    CHECK(loser->Current()->signing->key != nullptr);
  }
}

TEST_CASE("Secret store: a write over a stale resourceVersion is a conflict, the next one merges",
          "[ca][kube_secret]") {
  Fixture f;
  auto a = f.Store();
  auto b = f.Store();
  REQUIRE(a->Save({{"rotation.json", "{}"}, {"ca-cert.pem", "x"}}, {}).ok());
  REQUIRE(b->Load({"ca-cert.pem"}).ok());
  REQUIRE(a->Save({{"ca-cert.pem", "y"}}, {}).ok());
  CHECK(b->Save({{"next-ca-cert.pem", "z"}}, {}).code() == absl::StatusCode::kAborted);
  REQUIRE(b->Save({{"next-ca-cert.pem", "z"}}, {"rotation.json"}).ok());
  auto all = f.Store()->Load({"rotation.json", "ca-cert.pem", "next-ca-cert.pem"}).value();
  CHECK(all == CaEntries{{"ca-cert.pem", "y"}, {"next-ca-cert.pem", "z"}});
  auto conflicts = f.api.RequestLog();
  CHECK(std::count_if(conflicts.begin(), conflicts.end(), [](const std::string& l) {
          return l.rfind("PUT /api/v1/namespaces/weft-system/secrets/weft-ca", 0) == 0;
        }) == 3);
}

TEST_CASE("Secret store: a bad reference or an unreachable API server is a clear error",
          "[ca][kube_secret]") {
  Fixture f;
  for (const char* bad : {"weft-ca", "a/b/c", "Weft/ca", "ns/", "/name", "n.s/name", "ns/-x"}) {
    INFO(bad);
    auto s = KubeSecretCaStore::Create(bad, f.Http());
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  }
  auto store = f.Store();
  f.api.FailNextRequests(1, 403);
  auto loaded = store->Load({"root-cert.pem"});
  REQUIRE_FALSE(loaded.ok());
  CHECK(std::string(loaded.status().message()).find("Secret weft-system/weft-ca") != std::string::npos);
  CHECK(std::string(loaded.status().message()).find("403") != std::string::npos);
}

}  // namespace
}  // namespace weft::ca
