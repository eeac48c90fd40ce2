// Root management: first start creates and persists a CA with private file
// modes; later starts load it so certificates issued before a restart still
// verify; an operator's CA is used as given and a mismatched one refused;
// root rotation walks stable → distributing → draining → stable on a fake
// clock while a certificate from the old root keeps verifying.
#include "ca/root_rotator.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "ca/file_ca_store.h"
#include "tests/ca/test_ca.h"

namespace weft::ca {
namespace {

using namespace testing;
using std::chrono::hours;
using std::chrono::seconds;

constexpr auto kDay = hours(24);

std::string TempDir() {
  char tmpl[] = "/tmp/weft-ca-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

int Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Fixture {
  std::string dir = TempDir() + "/ca";  // not there yet: the store creates it
  common::FakeClock clock;
  std::unique_ptr<FileCaStore> store = FileCaStore::Open(dir).value();
  RotatorOptions options;

  RootRotatorPtr Open() {
    auto r = RootRotator::Open(*store, clock, options);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return std::move(*r);
  }
  absl::Status OpenError() {
    auto r = RootRotator::Open(*store, clock, options);
    REQUIRE_FALSE(r.ok());
    return r.status();
  }
};

IssuedCertificate Issue(const CaView& view, WallTime now, seconds ttl = kDay) {
  auto issued = CsrSigner().SignCsr(CsrFor("spiffe://cluster.local/ns/shop/sa/orders"),
                                    {"cluster.local", "shop", "orders"}, ttl, *view.signing, now);
  REQUIRE(issued.ok());
  return std::move(*issued);
}

TEST_CASE("first start creates a 10-year root and an intermediate, persisted privately", "[ca][rotator]") {
  Fixture f;
  RootRotatorPtr rotator = f.Open();
  CaViewConstSharedPtr view = rotator->Current();
  CHECK(view->phase == RotationPhase::kStable);
  CHECK_FALSE(view->plug_in);
  REQUIRE(view->roots.size() == 1);
  const SigningAuthority& a = *view->signing;
  CHECK(X509_cmp(view->roots[0].get(), a.root.get()) == 0);
  CHECK(IsSelfSigned(a.root.get()));
  CHECK(IsCa(a.root.get()));
  CHECK(IsCa(a.certificate.get()));
  CHECK_FALSE(IsSelfSigned(a.certificate.get()));
  auto lifetime = NotAfter(a.root.get()) - f.clock.WallNow();
  CHECK(lifetime >= hours(24 * 3649));
  CHECK(lifetime <= hours(24 * 3651));
  CHECK(EVP_PKEY_get_base_id(a.key.get()) == EVP_PKEY_EC);

  CHECK(Mode(f.dir) == 0700);
  for (const char* key : {"root-key.pem", "ca-key.pem"}) CHECK(Mode(f.dir + "/" + key) == 0600);
  for (const char* pub : {"root-cert.pem", "ca-cert.pem", "cert-chain.pem"}) CHECK(Mode(f.dir + "/" + pub) == 0644);
  // The trust bundle for proxies is the root; cert-chain.pem is intermediate + root.
  CHECK(Read(f.dir + "/root-cert.pem") == CertificateToPem(a.root.get()));
  CHECK(Read(f.dir + "/cert-chain.pem") ==
        CertificateToPem(a.certificate.get()) + CertificateToPem(a.root.get()));
  CHECK(rotator->TrustBundlePem() == std::vector<std::string>{CertificateToPem(a.root.get())});
}

TEST_CASE("a restart loads the same CA and certificates issued before it still verify", "[ca][rotator]") {
  Fixture f;
  IssuedCertificate before = Issue(*f.Open()->Current(), f.clock.WallNow());
  f.clock.Advance(hours(1));
  RootRotatorPtr again = f.Open();
  CaViewConstSharedPtr view = again->Current();
  CHECK(VerifyChainPem(before.chain_pem, Share(view->roots), f.clock.WallNow()).ok());
  // And the new process signs with the same intermediate.
  IssuedCertificate after = Issue(*view, f.clock.WallNow());
  CHECK(after.chain_pem[1] == before.chain_pem[1]);
}

TEST_CASE("plug-in mode: an operator's CA is used as given; a mismatched key is refused", "[ca][rotator]") {
  Fixture f;
  auto op = NewAuthority(f.clock.WallNow());
  AuthorityPem pem = ToPem(*op);
  auto write = [&](const std::string& name, const std::string& content) {
    REQUIRE(WriteFileAtomically(f.dir + "/" + name, content, 0600).ok());
  };
  write("ca-cert.pem", pem.ca_cert);
  write("cert-chain.pem", pem.cert_chain);
  write("root-cert.pem", pem.root_cert);

  SECTION("matching files") {
    write("ca-key.pem", pem.ca_key);
    RootRotatorPtr rotator = f.Open();
    CaViewConstSharedPtr view = rotator->Current();
    CHECK(view->plug_in);
    CHECK(X509_cmp(view->signing->certificate.get(), op->certificate.get()) == 0);
    CHECK(VerifyChainPem(Issue(*view, f.clock.WallNow()).chain_pem, Roots(*op), f.clock.WallNow()).ok());
    // The operator owns the root: no rotation, and the files stay as given.
    CHECK(rotator->Rotate().code() == absl::StatusCode::kFailedPrecondition);
    f.clock.Advance(kDay * 3600);
    CHECK(rotator->Tick().ok());
    CHECK(rotator->Current()->phase == RotationPhase::kStable);
    CHECK_FALSE(Exists(f.dir + "/root-key.pem"));
    CHECK(Read(f.dir + "/ca-cert.pem") == pem.ca_cert);
  }
  SECTION("a key that belongs to another certificate") {
    write("ca-key.pem", ToPem(*NewAuthority()).ca_key);
    absl::Status s = f.OpenError();
    CHECK(s.message().find("ca-key.pem does not match ca-cert.pem") != absl::string_view::npos);
  }
  SECTION("an intermediate that does not chain to root-cert.pem") {
    write("ca-key.pem", pem.ca_key);
    write("root-cert.pem", ToPem(*NewAuthority()).root_cert);
    CHECK(f.OpenError().message().find("root-cert.pem") != absl::string_view::npos);
  }
  SECTION("a missing file") {
    absl::Status s = f.OpenError();
    CHECK(s.message().find("missing ca-key.pem") != absl::string_view::npos);
  }
  SECTION("garbage instead of a key") {
    write("ca-key.pem", "not a key");
    CHECK(f.OpenError().message().find("ca-key.pem") != absl::string_view::npos);
  }
}

TEST_CASE("root rotation: overlap, switch when distributed, retire after the last old leaf", "[ca][rotator]") {
  Fixture f;
  f.options.root_ttl = kDay * 100;
  f.options.rotate_at_fraction = 0.5;
  f.options.max_leaf_ttl = kDay * 2;
  RootRotatorPtr rotator = f.Open();
  std::vector<uint64_t> notified;
  rotator->AddChangeCallback([&](const CaView& v) { notified.push_back(v.version); });
  bool distributed = false;
  std::vector<std::string> asked;
  rotator->SetBundleDistributedPredicate([&](const std::vector<std::string>& bundle) {
    asked = bundle;
    return distributed;
  });

  CaViewConstSharedPtr v0 = rotator->Current();
  X509* old_root = v0->signing->root.get();
  IssuedCertificate early = Issue(*v0, f.clock.WallNow(), kDay * 2);
  auto verifies = [&](const IssuedCertificate& c) {
    return VerifyChainPem(c.chain_pem, Share(rotator->Current()->roots), f.clock.WallNow()).ok();
  };

  // Before half the root's life nothing happens.
  f.clock.Advance(kDay * 49);
  REQUIRE(rotator->Tick().ok());
  CHECK(rotator->Current()->phase == RotationPhase::kStable);
  CHECK(notified.empty());

  // Past it: a new root joins the bundle; the old one still signs.
  f.clock.Advance(kDay * 2);
  REQUIRE(rotator->Tick().ok());
  CaViewConstSharedPtr v1 = rotator->Current();
  CHECK(v1->phase == RotationPhase::kDistributing);
  REQUIRE(v1->roots.size() == 2);
  CHECK(X509_cmp(v1->roots[0].get(), old_root) == 0);
  CHECK(v1->signing == v0->signing);
  REQUIRE(v1->next);
  CHECK(X509_cmp(v1->roots[1].get(), v1->next->root.get()) == 0);
  CHECK(notified.size() == 1);
  CHECK(Exists(f.dir + "/next-ca-key.pem"));
  CHECK(Mode(f.dir + "/next-root-key.pem") == 0600);
  CHECK(Read(f.dir + "/root-cert.pem") == v1->roots_pem[0] + v1->roots_pem[1]);
  // A second rotation cannot start while one is under way.
  CHECK(rotator->Rotate().code() == absl::StatusCode::kFailedPrecondition);

  // A restart in the middle resumes it.
  {
    RootRotatorPtr resumed = f.Open();
    CHECK(resumed->Current()->phase == RotationPhase::kDistributing);
    CHECK(X509_cmp(resumed->Current()->next->root.get(), v1->next->root.get()) == 0);
  }

  // Signing does not switch until every proxy has the new bundle.
  IssuedCertificate last_old = Issue(*v1, f.clock.WallNow(), kDay);
  rotator->RecordIssued(*v1->signing, last_old.not_after);
  f.clock.Advance(kDay * 10);
  REQUIRE(rotator->Tick().ok());
  CHECK(rotator->Current()->phase == RotationPhase::kDistributing);
  CHECK(asked == v1->roots_pem);

  // Then it does: the new intermediate signs, the old root stays trusted.
  last_old = Issue(*v1, f.clock.WallNow(), kDay);
  rotator->RecordIssued(*v1->signing, last_old.not_after);
  f.clock.Advance(hours(1));
  distributed = true;
  REQUIRE(rotator->Tick().ok());
  CaViewConstSharedPtr v2 = rotator->Current();
  CHECK(v2->phase == RotationPhase::kDraining);
  CHECK(v2->signing == v1->next);
  REQUIRE(v2->roots.size() == 2);
  CHECK(X509_cmp(v2->roots[0].get(), v1->next->root.get()) == 0);
  CHECK(X509_cmp(v2->roots[1].get(), old_root) == 0);
  CHECK(v2->retire_old_root_after == last_old.not_after);
  CHECK(notified.size() == 2);
  CHECK_FALSE(Exists(f.dir + "/next-ca-key.pem"));
  CHECK(verifies(last_old));
  IssuedCertificate fresh = Issue(*v2, f.clock.WallNow(), kDay * 2);
  CHECK(VerifyChainPem(fresh.chain_pem, Share(v1->roots), f.clock.WallNow()).ok());  // proxies holding v1's bundle
  CHECK(X509_cmp(ParseCertificatePem(fresh.chain_pem[1]).value().get(), v1->next->certificate.get()) == 0);

  // A restart while draining keeps both roots and the signer.
  {
    RootRotatorPtr resumed = f.Open();
    CHECK(resumed->Current()->phase == RotationPhase::kDraining);
    CHECK(resumed->Current()->roots.size() == 2);
    CHECK(X509_cmp(resumed->Current()->signing->certificate.get(), v2->signing->certificate.get()) == 0);
    CHECK(resumed->Current()->retire_old_root_after == v2->retire_old_root_after);
  }

  // The old root leaves only after the last leaf it signed has expired.
  f.clock.Advance(hours(22));
  REQUIRE(rotator->Tick().ok());
  CHECK(rotator->Current()->phase == RotationPhase::kDraining);
  CHECK(verifies(last_old));
  f.clock.Advance(hours(2));
  REQUIRE(rotator->Tick().ok());
  CaViewConstSharedPtr v3 = rotator->Current();
  CHECK(v3->phase == RotationPhase::kStable);
  REQUIRE(v3->roots.size() == 1);
  CHECK(X509_cmp(v3->roots[0].get(), v1->next->root.get()) == 0);
  CHECK(Read(f.dir + "/root-cert.pem") == v3->roots_pem[0]);
  CHECK_FALSE(Exists(f.dir + "/rotation.json"));
  CHECK(notified.size() == 3);
  CHECK(verifies(fresh));
  (void)early;
}

TEST_CASE("on-demand rotation without a predicate switches after the distribution time", "[ca][rotator]") {
  Fixture f;
  f.options.distribution_time = kDay;
  f.options.max_leaf_ttl = kDay * 2;
  RootRotatorPtr rotator = f.Open();
  // The signer in this process issued nothing yet, but a previous process may
  // have: after a restart the old root stays for the longest possible leaf.
  f.Open();
  rotator = f.Open();
  REQUIRE(rotator->Rotate().ok());
  CHECK(rotator->Current()->phase == RotationPhase::kDistributing);
  f.clock.Advance(kDay - seconds(1));
  REQUIRE(rotator->Tick().ok());
  CHECK(rotator->Current()->phase == RotationPhase::kDistributing);
  f.clock.Advance(seconds(1));
  REQUIRE(rotator->Tick().ok());
  CHECK(rotator->Current()->phase == RotationPhase::kDraining);
  CHECK(rotator->Current()->retire_old_root_after == f.clock.WallNow() + kDay * 2);
}

}  // namespace
}  // namespace weft::ca
