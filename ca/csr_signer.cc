#include "ca/csr_signer.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "ca/certificate_builder.h"
#include "ca/csr_parser.h"
#include "ca/leaf_encoder.h"

namespace weft::ca {
namespace {

constexpr absl::string_view kReasonPayload = "type.weft.io/weft.ca.DenialReason";

using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;

absl::Status CheckKey(EVP_PKEY* key) {
  if (key == nullptr)
    return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", "the CSR has no public key");
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1 ||
          (absl::string_view(group) != "prime256v1" && absl::string_view(group) != "P-256")) {
        ERR_clear_error();
        return Denied(absl::StatusCode::kInvalidArgument, "unsupported_key",
                      absl::StrCat("EC keys must be P-256, got ", group[0] ? group : "an unnamed curve"));
      }
      return absl::OkStatus();
    }
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) {
        return Denied(absl::StatusCode::kInvalidArgument, "unsupported_key",
                      absl::StrCat("RSA keys must have at least 2048 bits, got ", EVP_PKEY_get_bits(key)));
      }
      return absl::OkStatus();
    default:
      return Denied(absl::StatusCode::kInvalidArgument, "unsupported_key",
                    "the CSR's key must be ECDSA P-256 or RSA >= 2048 bits");
  }
}

// The requested extensions: exactly one URI SAN equal to `want`, nothing
// else in the SAN, and no CA request. Other requested extensions are
// ignored: the leaf's extensions are the CA's choice, never copied.
absl::Status CheckExtensions(const ParsedCsr& csr, const std::string& want) {
  if (csr.requests_ca) {
    return Denied(absl::StatusCode::kPermissionDenied, "ca_request",
                  "the CSR asks for a CA certificate (basicConstraints CA:TRUE); workloads get leaves only");
  }
  if (csr.san_extensions > 1) {
    return Denied(absl::StatusCode::kPermissionDenied, "extra_san",
                  "the CSR has more than one subjectAltName extension");
  }
  if (csr.uris.empty()) {
    return Denied(absl::StatusCode::kPermissionDenied, "identity_mismatch",
                  absl::StrCat("the CSR has no URI SAN; it must be exactly ", want));
  }
  if (csr.uris.size() > 1 || csr.other_names > 0) {
    return Denied(absl::StatusCode::kPermissionDenied, "extra_san",
                  absl::StrCat("the CSR must have exactly one SAN, the URI ", want, "; it has ",
                               csr.uris.size() + static_cast<size_t>(csr.other_names)));
  }
  if (csr.uris[0] != want) {
    return Denied(absl::StatusCode::kPermissionDenied, "identity_mismatch",
                  absl::StrCat("the CSR asks for ", csr.uris[0], " but the caller is ", want));
  }
  return absl::OkStatus();
}

// The fast path for the common CSR, ECDSA P-256 signed with SHA-256: the
// CSR's point is set on a per-thread P-256 public key (a few microseconds,
// against ~200 for OpenSSL 3.0's generic key decoding) and the signature is
// checked over the exact CertificationRequestInfo bytes.
absl::Status VerifyEcP256(const ParsedCsr& csr) {
  struct Verifier {
    EvpPkeyPtr key;
    PkeyCtxPtr ctx;
  };
  thread_local Verifier verifier = [] {
    // The P-256 generator: any valid point does until the first CSR's is set.
    static const unsigned char kGenerator[] = {
        0x04, 0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4, 0x40, 0xF2,
        0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96, 0x4F,
        0xE3, 0x42, 0xE2, 0xFE, 0x1A, 0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A, 0x7C, 0x0F, 0x9E, 0x16, 0x2B, 0xCE,
        0x33, 0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40, 0x68, 0x37, 0xBF, 0x51, 0xF5};
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<unsigned char*>(kGenerator),
                                          sizeof(kGenerator)),
        OSSL_PARAM_construct_end()};
    EVP_PKEY* key = nullptr;
    PkeyCtxPtr from(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    if (!from || EVP_PKEY_fromdata_init(from.get()) != 1 ||
        EVP_PKEY_fromdata(from.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
      std::abort();  // an OpenSSL without P-256: nothing would work
    }
    Verifier v{EvpPkeyPtr(key), PkeyCtxPtr(EVP_PKEY_CTX_new(key, nullptr))};
    if (!v.ctx) std::abort();
    return v;
  }();
  // Only real points: a one-octet 0x00 would decode as the point at
  // infinity, under which a signature can be forged.
  const size_t n = csr.public_key.size();
  const auto form = n == 0 ? 0 : static_cast<unsigned char>(csr.public_key[0]);
  if (!((n == 65 && form == 0x04) || (n == 33 && (form == 0x02 || form == 0x03))) ||
      EVP_PKEY_set1_encoded_public_key(
          verifier.key.get(), reinterpret_cast<const unsigned char*>(csr.public_key.data()), n) != 1) {
    ERR_clear_error();
    return Denied(absl::StatusCode::kInvalidArgument, "bad_csr",
                  "the CSR's EC public key is not a P-256 point");
  }
  unsigned char digest[32];
  Sha256(csr.info, digest);
  if (EVP_PKEY_verify_init(verifier.ctx.get()) != 1 ||
      EVP_PKEY_verify(verifier.ctx.get(), reinterpret_cast<const unsigned char*>(csr.signature.data()),
                      csr.signature.size(), digest, sizeof(digest)) != 1) {
    ERR_clear_error();
    return Denied(absl::StatusCode::kInvalidArgument, "bad_signature", "the CSR's signature does not verify");
  }
  return absl::OkStatus();
}

// Everything else (RSA keys, other digests): OpenSSL's own CSR decoding.
absl::Status VerifyWithOpenSsl(const ParsedCsr& csr) {
  const auto* p = reinterpret_cast<const unsigned char*>(csr.der.data());
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr.der.size())));
  if (!req) {
    ERR_clear_error();
    return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", "OpenSSL cannot decode the CSR");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  ERR_clear_error();
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return Denied(absl::StatusCode::kInvalidArgument, "bad_signature", "the CSR's signature does not verify");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Denied(absl::StatusCode code, absl::string_view reason, absl::string_view message) {
  absl::Status status(code, message);
  status.SetPayload(kReasonPayload, absl::Cord(reason));
  return status;
}

std::string DenialReason(const absl::Status& status) {
  auto payload = status.GetPayload(kReasonPayload);
  return payload ? std::string(*payload) : std::string();
}

CsrSigner::CsrSigner(SignerOptions options) : options_(options) {}

absl::StatusOr<IssuedCertificate> CsrSigner::SignCsr(absl::string_view csr_pem, const SpiffeId& identity,
                                                     std::chrono::seconds requested,
                                                     const SigningAuthority& authority, WallTime now) const {
  if (csr_pem.size() > options_.max_csr_bytes) {
    return Denied(absl::StatusCode::kInvalidArgument, "bad_csr",
                  absl::StrCat("the CSR is larger than ", options_.max_csr_bytes, " bytes"));
  }
  if (requested.count() < 0) {
    return Denied(absl::StatusCode::kInvalidArgument, "bad_validity",
                  "validity_seconds must not be negative");
  }
  auto der = CsrPemToDer(csr_pem);
  if (!der.ok()) return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", der.status().message());
  auto csr = ParseCsr(*der);
  if (!csr.ok()) {
    return Denied(absl::StatusCode::kInvalidArgument, "bad_csr",
                  absl::StrCat("malformed CSR: ", csr.status().message()));
  }
  if (csr->key_algorithm == oid::kEcPublicKey && !csr->IsEcP256()) {
    return Denied(absl::StatusCode::kInvalidArgument, "unsupported_key", "EC keys must be P-256");
  }
  if (!csr->IsEcP256() && !csr->IsRsa()) {
    return Denied(absl::StatusCode::kInvalidArgument, "unsupported_key",
                  "the CSR's key must be ECDSA P-256 or RSA >= 2048 bits");
  }
  if (absl::Status s =
          csr->IsEcP256() && csr->SignedWithEcdsaSha256() ? VerifyEcP256(*csr) : VerifyWithOpenSsl(*csr);
      !s.ok()) {
    return s;
  }
  const std::string want = identity.ToString();
  if (absl::Status s = CheckExtensions(*csr, want); !s.ok()) return s;

  std::chrono::seconds ttl =
      requested.count() == 0 ? options_.default_ttl : std::min(requested, options_.max_ttl);
  WallTime not_after =
      std::min({now + ttl, NotAfter(authority.certificate.get()), NotAfter(authority.root.get())});
  LeafFields fields;
  fields.public_key_info = csr->public_key_info;
  fields.public_key = csr->public_key;
  fields.uri = want;
  fields.key_encipherment = csr->IsRsa();
  fields.not_before = std::chrono::floor<std::chrono::seconds>(now - options_.backdate);
  fields.not_after = std::chrono::floor<std::chrono::seconds>(not_after);
  auto leaf = EncodeLeaf(fields, authority.certificate.get(), authority.key.get());
  if (!leaf.ok()) return leaf.status();
  IssuedCertificate out;
  out.chain_pem.reserve(1 + authority.chain_pem.size());
  out.chain_pem.push_back(DerToPem(leaf->der, "CERTIFICATE"));
  out.chain_pem.insert(out.chain_pem.end(), authority.chain_pem.begin(), authority.chain_pem.end());
  out.serial_hex = std::move(leaf->serial_hex);
  out.not_before = fields.not_before;
  out.not_after = fields.not_after;
  return out;
}

absl::StatusOr<IssuedCertificate> CsrSigner::SignServing(EVP_PKEY* public_key,
                                                         const std::vector<std::string>& names,
                                                         std::chrono::seconds ttl,
                                                         const SigningAuthority& authority,
                                                         WallTime now) const {
  std::vector<std::string> dns, ips;
  for (const auto& name : names) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
    ERR_clear_error();
    (ip != nullptr ? ips : dns).push_back(name);
    ASN1_OCTET_STRING_free(ip);
  }
  if (names.empty()) return absl::InvalidArgumentError("a serving certificate needs at least one name");
  WallTime not_after =
      std::min({now + ttl, NotAfter(authority.certificate.get()), NotAfter(authority.root.get())});
  auto leaf = CertificateBuilder()
                  .RandomSerial()
                  .Validity(now - options_.backdate, not_after)
                  .Subject({{"CN", names.front()}})
                  .PublicKey(public_key)
                  .Issuer(authority.certificate.get())
                  .BasicConstraints(false)
                  .KeyUsage(CertificateBuilder::kDigitalSignature | CertificateBuilder::kKeyEncipherment)
                  .ServerAndClientAuth()
                  .SubjectAltNames({}, dns, ips, /*critical=*/false)
                  .Sign(authority.key.get());
  if (!leaf.ok()) return leaf.status();
  return Finish(std::move(*leaf), authority);
}

absl::StatusOr<IssuedCertificate> CsrSigner::Finish(X509Ptr leaf, const SigningAuthority& authority) const {
  IssuedCertificate out;
  out.chain_pem.reserve(1 + authority.chain_pem.size());
  out.chain_pem.push_back(CertificateToPem(leaf.get()));
  out.chain_pem.insert(out.chain_pem.end(), authority.chain_pem.begin(), authority.chain_pem.end());
  out.serial_hex = SerialHex(leaf.get());
  out.not_before = NotBefore(leaf.get());
  out.not_after = NotAfter(leaf.get());
  return out;
}

}  // namespace weft::ca
