// The strict PKCS#10 parser (ca/csr_parser.h) on good requests made by
// OpenSSL and on hostile ones: truncations, trailing bytes, non-DER lengths,
// wrong tags, duplicated attributes. It must refuse them with an error
// naming the field, never crash or read past its input (ASan runs this).
#include "ca/csr_parser.h"

#include <catch2/catch.hpp>

#include "ca/der.h"
#include "tests/ca/test_ca.h"

namespace weft::ca {
namespace {

using namespace testing;
const std::string kOrdersUri = "spiffe://cluster.local/ns/shop/sa/orders";

std::string GoodDer(CsrFields fields = {{kOrdersUri}, {}, false, ""}) {
  EvpPkeyPtr key = NewKey();
  return CsrPemToDer(Csr(key.get(), fields)).value();
}

// CertificationRequest around `info`, with a syntactically fine signature.
std::string Request(const std::string& info) {
  std::string content = info;
  content += der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kEcdsaWithSha256));
  content += der::Tlv(der::kBitString, std::string("\0\x30\x00", 3));
  return der::Tlv(der::kSequence, content);
}

// CertificationRequestInfo with a P-256 key and the given attributes.
std::string Info(const std::string& attributes, const std::string& version = std::string("\0", 1),
                 bool with_attributes = true) {
  std::string spki = der::Tlv(der::kSequence,
                              der::Tlv(der::kOid, oid::kEcPublicKey) + der::Tlv(der::kOid, oid::kPrime256v1));
  spki += der::Tlv(der::kBitString, std::string(1, '\0') + "\x04" + std::string(64, '\x01'));
  std::string content = der::Tlv(der::kInteger, version);
  content += der::Tlv(der::kSequence, "");  // empty subject
  content += der::Tlv(der::kSequence, spki);
  if (with_attributes) content += der::Tlv(der::ContextConstructed(0), attributes);
  return der::Tlv(der::kSequence, content);
}

std::string ExtensionRequest(const std::string& extensions) {
  return der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kExtensionRequest) +
                                      der::Tlv(der::kSet, der::Tlv(der::kSequence, extensions)));
}

std::string Extension(absl::string_view id, const std::string& value) {
  return der::Tlv(der::kSequence, der::Tlv(der::kOid, id) + der::Tlv(der::kOctetString, value));
}

std::string San(const std::string& names) {
  return Extension(oid::kSubjectAltName, der::Tlv(der::kSequence, names));
}

std::string Uri(const std::string& uri) { return der::Tlv(der::ContextPrimitive(6), uri); }

void CheckRefused(const std::string& der, const std::string& field) {
  auto parsed = ParseCsr(der);
  INFO(parsed.status().ToString());
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(parsed.status().message()).find(field) != std::string::npos);
}

TEST_CASE("an OpenSSL-made CSR parses into its key, signature and requested SAN", "[ca][csr_parser]") {
  std::string der = GoodDer();
  auto csr = ParseCsr(der);
  INFO(csr.status().ToString());
  REQUIRE(csr.ok());
  CHECK(csr->IsEcP256());
  CHECK(csr->SignedWithEcdsaSha256());
  CHECK_FALSE(csr->IsRsa());
  CHECK(csr->der == der);
  // Right after the outer header: tag, 0x8N, N length octets (N is 1 or 2:
  // the CSR's size varies with its ECDSA signature around 255 bytes).
  CHECK(der.find(std::string(csr->info)) == 2 + (static_cast<unsigned char>(der[1]) & 0x7Fu));
  CHECK(csr->public_key.size() == 65);
  CHECK(csr->public_key[0] == '\x04');
  CHECK(csr->uris == std::vector<absl::string_view>{kOrdersUri});
  CHECK(csr->san_extensions == 1);
  CHECK(csr->other_names == 0);
  CHECK_FALSE(csr->requests_ca);

  auto more = ParseCsr(GoodDer({{kOrdersUri}, {"a.example"}, true, "orders"}));
  REQUIRE(more.ok());
  CHECK(more->other_names == 1);
  CHECK(more->requests_ca);
  CHECK_FALSE(more->subject.empty());

  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  auto rsa_csr = ParseCsr(CsrPemToDer(Csr(rsa.get(), {{kOrdersUri}, {}, false, ""})).value());
  REQUIRE(rsa_csr.ok());
  CHECK(rsa_csr->IsRsa());
  CHECK_FALSE(rsa_csr->SignedWithEcdsaSha256());
}

TEST_CASE("every truncation and any trailing byte is refused", "[ca][csr_parser]") {
  std::string der = GoodDer();
  for (size_t n = 0; n < der.size(); ++n) {
    // A heap copy of exactly n bytes, so ASan catches any read past the end.
    auto copy = std::make_unique<char[]>(n + 1);
    std::memcpy(copy.get(), der.data(), n);
    CHECK_FALSE(ParseCsr(absl::string_view(copy.get(), n)).ok());
  }
  CheckRefused(der + std::string(1, '\0'), "trailing");
}

TEST_CASE("non-DER lengths and tags are refused", "[ca][csr_parser]") {
  std::string der = GoodDer();
  // The outer header: tag, 0x8N, N length octets (a request is over 127 bytes).
  const size_t octets = static_cast<unsigned char>(der[1]) & 0x7F;
  REQUIRE((octets == 1 || octets == 2));
  SECTION("indefinite length") {
    std::string bad = der;
    bad.replace(1, 1 + octets, "\x80");
    CheckRefused(bad, "indefinite");
  }
  SECTION("a length with a leading zero octet") {
    std::string bad = der;
    bad.replace(1, 1, std::string(1, static_cast<char>(0x80 | (octets + 1))) + std::string(1, '\0'));
    CheckRefused(bad, "non-minimal");
  }
  SECTION("a long-form length under 128") {
    std::string bad = "\x30\x81\x05" + std::string("\x02\x01\x00\x30\x00", 5);
    CheckRefused(bad, "non-minimal");
  }
  SECTION("a length past the end") {
    // A header for one byte more than follows, encoded minimally (bumping
    // the last length octet would wrap at 0xFF: the CSR's size varies with
    // its ECDSA signature).
    std::string bad = der::Tlv(der::kSequence, der.substr(2 + octets) + std::string(1, '\0'));
    bad.pop_back();
    CheckRefused(bad, "exceeds");
  }
  SECTION("a length of more than four octets") {
    CheckRefused(std::string("\x30\x85\x01\x00\x00\x00\x00", 7), "too large");
  }
  SECTION("a high tag number") {
    std::string names = Uri(kOrdersUri) + std::string("\x9F\x01\x00", 3);
    CheckRefused(Request(Info(ExtensionRequest(San(names)))), "high tag");
  }
  SECTION("a SET where the request must be a SEQUENCE") {
    std::string bad = der;
    bad[0] = '\x31';
    CheckRefused(bad, "CertificationRequest");
  }
  SECTION("empty input") { CheckRefused("", "CertificationRequest: missing"); }
}

TEST_CASE("structurally wrong requests name the field", "[ca][csr_parser]") {
  std::string san = ExtensionRequest(San(Uri(kOrdersUri)));
  REQUIRE(ParseCsr(Request(Info(san))).ok());
  SECTION("version 1") { CheckRefused(Request(Info(san, "\x01")), "version"); }
  SECTION("a second extensionRequest attribute") { CheckRefused(Request(Info(san + san)), "more than one"); }
  SECTION("an extensionRequest with two values") {
    std::string two =
        der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kExtensionRequest) +
                                     der::Tlv(der::kSet, der::Tlv(der::kSequence, San(Uri(kOrdersUri))) +
                                                             der::Tlv(der::kSequence, "")));
    CheckRefused(Request(Info(two)), "exactly one value");
  }
  SECTION("a SAN entry that is not a GeneralName") {
    CheckRefused(Request(Info(ExtensionRequest(San(Uri(kOrdersUri) + der::Tlv(der::kInteger, "\x01"))))),
                 "not a GeneralName");
  }
  SECTION("an empty SAN") { CheckRefused(Request(Info(ExtensionRequest(San("")))), "no names"); }
  SECTION("a URI that is not IA5") {
    CheckRefused(Request(Info(ExtensionRequest(San(Uri("spiffe://x/\xC3\xA9"))))), "IA5String");
  }
  SECTION("a SAN value with trailing bytes") {
    std::string value = der::Tlv(der::kSequence, Uri(kOrdersUri)) + std::string(1, '\0');
    CheckRefused(Request(Info(ExtensionRequest(Extension(oid::kSubjectAltName, value)))), "trailing");
  }
  SECTION("a BOOLEAN that is not 0x00 or 0xFF") {
    std::string bc =
        Extension(oid::kBasicConstraints, der::Tlv(der::kSequence, der::Tlv(der::kBoolean, "\x01")));
    CheckRefused(Request(Info(ExtensionRequest(bc))), "BOOLEAN");
  }
  SECTION("basicConstraints CA:TRUE is read") {
    std::string bc =
        Extension(oid::kBasicConstraints, der::Tlv(der::kSequence, der::Tlv(der::kBoolean, "\xFF")));
    auto csr = ParseCsr(Request(Info(ExtensionRequest(bc))));
    REQUIRE(csr.ok());
    CHECK(csr->requests_ca);
  }
  SECTION("an unterminated object identifier") {
    std::string attr = der::Tlv(der::kSequence, der::Tlv(der::kOid, "\x2A\x86") + der::Tlv(der::kSet, ""));
    CheckRefused(Request(Info(attr)), "object identifier");
  }
  SECTION("a signature with unused bits") {
    std::string info = Info(san);
    std::string content = info + der::Tlv(der::kSequence, der::Tlv(der::kOid, oid::kEcdsaWithSha256)) +
                          der::Tlv(der::kBitString, std::string("\x03\x30\x00", 3));
    CheckRefused(der::Tlv(der::kSequence, content), "unused bits");
  }
  SECTION("no attributes field") {
    CheckRefused(Request(Info(san, std::string("\0", 1), /*with_attributes=*/false)), "attributes: missing");
  }
}

TEST_CASE("PEM armour: one CERTIFICATE REQUEST block of valid base64", "[ca][csr_parser]") {
  EvpPkeyPtr key = NewKey();
  std::string pem = Csr(key.get(), {{kOrdersUri}, {}, false, ""});
  REQUIRE(CsrPemToDer(pem).ok());
  REQUIRE(CsrPemToDer("\n  " + pem + "\n\n").ok());
  std::string renamed = pem;
  renamed.replace(renamed.find("CERTIFICATE REQUEST"), 19, "NEW CERTIFICATE REQUEST");
  renamed.replace(renamed.rfind("CERTIFICATE REQUEST"), 19, "NEW CERTIFICATE REQUEST");
  CHECK(CsrPemToDer(renamed).ok());
  CHECK_FALSE(CsrPemToDer(pem + "trailing text").ok());
  CHECK_FALSE(CsrPemToDer("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
  CHECK_FALSE(
      CsrPemToDer("-----BEGIN CERTIFICATE REQUEST-----\nAA*A\n-----END CERTIFICATE REQUEST-----").ok());
  CHECK_FALSE(
      CsrPemToDer("-----BEGIN CERTIFICATE REQUEST-----\nAAA\n-----END CERTIFICATE REQUEST-----").ok());
  CHECK_FALSE(CsrPemToDer("-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----").ok());
  CHECK_FALSE(CsrPemToDer("-----BEGIN CERTIFICATE REQUEST-----").ok());
}

TEST_CASE("flipping any single byte never crashes the parser", "[ca][csr_parser]") {
  std::string der = GoodDer({{kOrdersUri}, {"a.example"}, true, "orders"});
  int refused = 0;
  for (size_t i = 0; i < der.size(); ++i) {
    for (unsigned char x : {0x01, 0x80, 0xFF}) {
      std::string bad = der;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ x);
      refused += ParseCsr(bad).ok() ? 0 : 1;
    }
  }
  CHECK(refused > 0);
}

}  // namespace
}  // namespace weft::ca
