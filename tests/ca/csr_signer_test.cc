// The pure signer: every issued chain verifies with OpenSSL against the root,
// with the SPIFFE SAN, key usage, EKU, basic constraints and validity a
// workload relies on; every CSR the CA must refuse is refused with the right
// code and reason.
#include "ca/csr_signer.h"

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "ca/csr_parser.h"
#include "ca/der.h"
#include "ca/leaf_encoder.h"
#include "tests/ca/test_ca.h"

namespace weft::ca {
namespace {

using namespace testing;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const SpiffeId kOrders{"cluster.local", "shop", "orders"};
const std::string kOrdersUri = "spiffe://cluster.local/ns/shop/sa/orders";

IssuedCertificate MustSign(const CsrSigner& signer, const std::string& csr, const SigningAuthority& a,
                           seconds ttl = seconds(0)) {
  auto issued = signer.SignCsr(csr, kOrders, ttl, a, kNow);
  INFO(issued.status().ToString());
  REQUIRE(issued.ok());
  return std::move(*issued);
}

TEST_CASE("an issued chain verifies against the root and carries exactly the caller's SPIFFE ID",
          "[ca][signer]") {
  auto authority = NewAuthority();
  CsrSigner signer;
  IssuedCertificate issued = MustSign(signer, CsrFor(kOrdersUri), *authority);

  REQUIRE(issued.chain_pem.size() == 2);  // leaf, intermediate; never the root
  CHECK(VerifyChainPem(issued.chain_pem, Roots(*authority), kNow).ok());
  auto intermediate = ParseCertificatePem(issued.chain_pem[1]).value();
  CHECK(X509_cmp(intermediate.get(), authority->certificate.get()) == 0);

  X509Ptr parsed = ParseCertificatePem(issued.chain_pem[0]).value();
  X509* leaf = parsed.get();
  CHECK(UriSans(leaf) == std::vector<std::string>{kOrdersUri});
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(names != nullptr);
  CHECK(sk_GENERAL_NAME_num(names) == 1);
  GENERAL_NAMES_free(names);
  CHECK(X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1) >= 0);
  CHECK(X509_EXTENSION_get_critical(
            X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1))) == 1);

  // CA:FALSE, digitalSignature only (EC), serverAuth + clientAuth.
  CHECK_FALSE(IsCa(leaf));
  CHECK(X509_get_ext_by_NID(leaf, NID_basic_constraints, -1) >= 0);
  CHECK(X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_extended_key_usage(leaf) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));

  // SKI of its own key, AKI = the intermediate's SKI.
  REQUIRE(X509_get0_subject_key_id(leaf) != nullptr);
  REQUIRE(X509_get0_authority_key_id(leaf) != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
                              X509_get0_subject_key_id(authority->certificate.get())) == 0);

  // 128-bit random serial; two leaves never share one.
  CHECK(issued.serial_hex.size() == 32);
  CHECK(MustSign(signer, CsrFor(kOrdersUri), *authority).serial_hex != issued.serial_hex);

  CHECK(X509_get_version(leaf) == X509_VERSION_3);
}

TEST_CASE("the leaf carries the CSR's public key", "[ca][signer]") {
  auto authority = NewAuthority();
  EvpPkeyPtr key = NewKey();
  IssuedCertificate issued = MustSign(CsrSigner(), Csr(key.get(), {{kOrdersUri}, {}, false, ""}), *authority);
  // As a TLS stack reads it: from the PEM.
  auto reread = ParseCertificatePem(issued.chain_pem[0]).value();
  CHECK(KeyMatchesCertificate(key.get(), reread.get()));
  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  IssuedCertificate rsa_leaf =
      MustSign(CsrSigner(), Csr(rsa.get(), {{kOrdersUri}, {}, false, ""}), *authority);
  CHECK(KeyMatchesCertificate(rsa.get(), ParseCertificatePem(rsa_leaf.chain_pem[0]).value().get()));
}

TEST_CASE("validity: 24 h by default, as requested, capped by the maximum, backdated 5 minutes",
          "[ca][signer]") {
  auto authority = NewAuthority();
  CsrSigner signer;
  IssuedCertificate def = MustSign(signer, CsrFor(kOrdersUri), *authority);
  CHECK(def.not_before == kNow - minutes(5));
  CHECK(def.not_after == kNow + hours(24));

  IssuedCertificate hour = MustSign(signer, CsrFor(kOrdersUri), *authority, seconds(3600));
  CHECK(hour.not_after == kNow + hours(1));

  IssuedCertificate capped = MustSign(signer, CsrFor(kOrdersUri), *authority, hours(24 * 365));
  CHECK(capped.not_after == kNow + signer.options().max_ttl);

  // Valid just after issuance (and a little before, for a slow clock); not after expiry.
  CHECK(VerifyChainPem(hour.chain_pem, Roots(*authority), kNow - minutes(4)).ok());
  CHECK_FALSE(VerifyChainPem(hour.chain_pem, Roots(*authority), kNow + hours(1) + seconds(1)).ok());

  // Never beyond the intermediate's own expiry.
  auto short_lived = CreateAuthority("cluster.local", hours(2), kNow).value();
  CHECK(MustSign(signer, CsrFor(kOrdersUri), *short_lived).not_after <=
        NotAfter(short_lived->certificate.get()));

  auto negative = signer.SignCsr(CsrFor(kOrdersUri), kOrders, seconds(-1), *authority, kNow);
  CHECK(negative.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("RSA 2048 keys are accepted and get keyEncipherment", "[ca][signer]") {
  auto authority = NewAuthority();
  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  REQUIRE(rsa);
  IssuedCertificate issued = MustSign(CsrSigner(), Csr(rsa.get(), {{kOrdersUri}, {}, false, ""}), *authority);
  CHECK(X509_get_key_usage(ParseCertificatePem(issued.chain_pem[0]).value().get()) ==
        (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  CHECK(VerifyChainPem(issued.chain_pem, Roots(*authority), kNow).ok());
}

void CheckDenied(const std::string& csr, absl::StatusCode code, const std::string& reason) {
  auto authority = NewAuthority();
  auto issued = CsrSigner().SignCsr(csr, kOrders, seconds(0), *authority, kNow);
  INFO(issued.status().ToString());
  REQUIRE_FALSE(issued.ok());
  CHECK(issued.status().code() == code);
  CHECK(DenialReason(issued.status()) == reason);
  CHECK_FALSE(issued.status().message().empty());
}

TEST_CASE("CSRs for another identity, more SANs or a CA are PERMISSION_DENIED with a reason",
          "[ca][signer]") {
  EvpPkeyPtr key = NewKey();
  SECTION("another namespace") {
    CheckDenied(CsrFor("spiffe://cluster.local/ns/other/sa/orders"), absl::StatusCode::kPermissionDenied,
                "identity_mismatch");
  }
  SECTION("another service account") {
    CheckDenied(CsrFor("spiffe://cluster.local/ns/shop/sa/payments"), absl::StatusCode::kPermissionDenied,
                "identity_mismatch");
  }
  SECTION("another trust domain") {
    CheckDenied(CsrFor("spiffe://evil.example/ns/shop/sa/orders"), absl::StatusCode::kPermissionDenied,
                "identity_mismatch");
  }
  SECTION("no URI SAN at all") {
    CheckDenied(Csr(key.get(), {{}, {}, false, "orders"}), absl::StatusCode::kPermissionDenied,
                "identity_mismatch");
  }
  SECTION("two URI SANs") {
    CheckDenied(Csr(key.get(), {{kOrdersUri, "spiffe://cluster.local/ns/shop/sa/payments"}, {}, false, ""}),
                absl::StatusCode::kPermissionDenied, "extra_san");
  }
  SECTION("a DNS SAN besides the URI") {
    CheckDenied(Csr(key.get(), {{kOrdersUri}, {"payments.shop.svc"}, false, ""}),
                absl::StatusCode::kPermissionDenied, "extra_san");
  }
  SECTION("a CA certificate") {
    CheckDenied(Csr(key.get(), {{kOrdersUri}, {}, true, ""}), absl::StatusCode::kPermissionDenied,
                "ca_request");
  }
}

TEST_CASE("unparsable CSRs, bad signatures and weak keys are INVALID_ARGUMENT", "[ca][signer]") {
  SECTION("not PEM") { CheckDenied("hello", absl::StatusCode::kInvalidArgument, "bad_csr"); }
  SECTION("empty") { CheckDenied("", absl::StatusCode::kInvalidArgument, "bad_csr"); }
  SECTION("PEM armour around garbage") {
    CheckDenied("-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n",
                absl::StatusCode::kInvalidArgument, "bad_csr");
  }
  SECTION("truncated") {
    std::string csr = CsrFor(kOrdersUri);
    CheckDenied(csr.substr(0, csr.size() / 2), absl::StatusCode::kInvalidArgument, "bad_csr");
  }
  SECTION("too large") {
    CheckDenied(std::string(100 * 1024, 'A'), absl::StatusCode::kInvalidArgument, "bad_csr");
  }
  SECTION("a signature by another key") {
    // Same content, signed by a key that does not match the CSR's public key.
    EvpPkeyPtr key = NewKey();
    EvpPkeyPtr other = NewKey();
    X509ReqPtr req = ParseCsrPem(Csr(key.get(), {{kOrdersUri}, {}, false, ""})).value();
    REQUIRE(X509_REQ_sign(req.get(), other.get(), EVP_sha256()) > 0);
    REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
    CheckDenied(CsrToPem(req.get()), absl::StatusCode::kInvalidArgument, "bad_signature");
  }
  SECTION("a public key at infinity (under which any signature could be forged)") {
    // The request as OpenSSL made it, with the point replaced by the one-octet
    // encoding of infinity and the lengths fixed up.
    std::string spki = der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kEcPublicKey) +
                                                    der::Tlv(der::kOid, oid::kPrime256v1)) +
                       der::Tlv(der::kBitString, std::string(2, '\0'));
    std::string san = der::Tlv(der::ContextPrimitive(6), kOrdersUri);
    std::string ext =
        der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kSubjectAltName) +
                                     der::Tlv(der::kOctetString, der::Tlv(der::kSequence, san)));
    std::string attr = der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kExtensionRequest) +
                                                    der::Tlv(der::kSet, der::Tlv(der::kSequence, ext)));
    std::string info = der::Tlv(
        der::kSequence, der::Tlv(der::kInteger, std::string(1, '\0')) + der::Tlv(der::kSequence, "") +
                            der::Tlv(der::kSequence, spki) + der::Tlv(der::ContextConstructed(0), attr));
    std::string request =
        der::Tlv(der::kSequence,
                 info + der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kEcdsaWithSha256)) +
                     der::Tlv(der::kBitString, std::string(1, '\0') + "\x30\x06\x02\x01\x01\x02\x01\x01"));
    CheckDenied(DerToPem(request, "CERTIFICATE REQUEST"), absl::StatusCode::kInvalidArgument, "bad_csr");
  }
  SECTION("a P-384 key") {
    EvpPkeyPtr p384(EVP_EC_gen("P-384"));
    CheckDenied(Csr(p384.get(), {{kOrdersUri}, {}, false, ""}), absl::StatusCode::kInvalidArgument,
                "unsupported_key");
  }
  SECTION("RSA 1024") {
    EvpPkeyPtr rsa(EVP_RSA_gen(1024));
    CheckDenied(Csr(rsa.get(), {{kOrdersUri}, {}, false, ""}), absl::StatusCode::kInvalidArgument,
                "unsupported_key");
  }
}

TEST_CASE("CSRs of many keys in a row on one thread each verify under their own key only", "[ca][signer]") {
  // The signer reuses a per-thread key object for verification: no CSR may
  // be checked against the previous one's key.
  auto authority = NewAuthority();
  CsrSigner signer;
  for (int i = 0; i < 20; ++i) {
    EvpPkeyPtr key = NewKey();
    auto issued =
        signer.SignCsr(Csr(key.get(), {{kOrdersUri}, {}, false, ""}), kOrders, seconds(0), *authority, kNow);
    REQUIRE(issued.ok());
    CHECK(KeyMatchesCertificate(key.get(), ParseCertificatePem(issued->chain_pem[0]).value().get()));
    if (i % 5 == 4) {
      EvpPkeyPtr other = NewKey();
      X509ReqPtr req = ParseCsrPem(Csr(key.get(), {{kOrdersUri}, {}, false, ""})).value();
      REQUIRE(X509_REQ_sign(req.get(), other.get(), EVP_sha256()) > 0);
      REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
      auto forged = signer.SignCsr(CsrToPem(req.get()), kOrders, seconds(0), *authority, kNow);
      CHECK(DenialReason(forged.status()) == "bad_signature");
    }
  }
}

TEST_CASE("random bytes inside a CSR never crash the signer", "[ca][signer]") {
  auto authority = NewAuthority();
  CsrSigner signer;
  std::string csr = CsrFor(kOrdersUri);
  size_t body = csr.find('\n') + 1;
  uint32_t seed = 12345;
  for (int i = 0; i < 300; ++i) {
    std::string mutated = csr;
    for (int j = 0; j < 3; ++j) {
      seed = seed * 1103515245 + 12345;
      size_t at = body + (seed >> 8) % (csr.size() - body - 40);
      mutated[at] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/"[(seed >> 4) % 44];
    }
    auto issued = signer.SignCsr(mutated, kOrders, seconds(0), *authority, kNow);
    if (!issued.ok()) CHECK(issued.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("the serving certificate carries DNS names and IPs for weftd", "[ca][signer]") {
  auto authority = NewAuthority();
  EvpPkeyPtr key = NewKey();
  auto issued = CsrSigner().SignServing(key.get(), {"weftd.weft-system.svc", "localhost", "127.0.0.1"},
                                        hours(24), *authority, kNow);
  REQUIRE(issued.ok());
  X509Ptr parsed = ParseCertificatePem(issued->chain_pem[0]).value();
  X509* leaf = parsed.get();
  CHECK(X509_check_host(leaf, "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(leaf, "weftd.weft-system.svc", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(leaf, "127.0.0.1", 0) == 1);
  CHECK(X509_check_host(leaf, "evil.example", 0, 0, nullptr) == 0);
  CHECK(VerifyChainPem(issued->chain_pem, Roots(*authority), kNow).ok());
}

TEST_CASE("SPIFFE IDs parse only in Weft's exact form", "[ca][spiffe]") {
  auto id = SpiffeId::Parse(kOrdersUri);
  REQUIRE(id.ok());
  CHECK(*id == kOrders);
  CHECK(id->ToString() == kOrdersUri);
  for (const char* bad :
       {"spiffe://cluster.local/ns/shop", "http://cluster.local/ns/shop/sa/orders",
        "spiffe://cluster.local/ns/shop/sa/orders/x", "spiffe://cluster.local/ns/Shop/sa/orders",
        "spiffe://cluster.local/ns//sa/orders", "spiffe:///ns/shop/sa/orders"}) {
    INFO(bad);
    CHECK_FALSE(SpiffeId::Parse(bad).ok());
  }
}

}  // namespace
}  // namespace weft::ca
