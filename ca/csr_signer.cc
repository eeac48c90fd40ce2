#include "ca/csr_signer.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "ca/certificate_builder.h"

namespace weft::ca {
namespace {

constexpr absl::string_view kReasonPayload = "type.weft.io/weft.ca.DenialReason";

using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), void (*)(STACK_OF(X509_EXTENSION)*)>;

void FreeExtensions(STACK_OF(X509_EXTENSION) * exts) { sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free); }

absl::Status CheckKey(EVP_PKEY* key) {
  if (key == nullptr) return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", "the CSR has no public key");
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
absl::Status CheckExtensions(X509_REQ* csr, const std::string& want) {
  ExtensionStackPtr exts(X509_REQ_get_extensions(csr), FreeExtensions);
  ERR_clear_error();  // no extensions at all is not an error
  std::vector<std::string> uris;
  int other_names = 0;
  int san_extensions = 0;
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    if (nid == NID_basic_constraints) {
      auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509V3_EXT_d2i(ext));
      if (bc == nullptr) {
        ERR_clear_error();
        return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", "unparsable basicConstraints in the CSR");
      }
      bool ca = bc->ca != 0;
      BASIC_CONSTRAINTS_free(bc);
      if (ca) {
        return Denied(absl::StatusCode::kPermissionDenied, "ca_request",
                      "the CSR asks for a CA certificate (basicConstraints CA:TRUE); workloads get leaves only");
      }
    } else if (nid == NID_subject_alt_name) {
      ++san_extensions;
      auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
      if (names == nullptr) {
        ERR_clear_error();
        return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", "unparsable subjectAltName in the CSR");
      }
      for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, j);
        if (gn->type == GEN_URI) {
          const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
          uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<size_t>(ASN1_STRING_length(s)));
        } else {
          ++other_names;
        }
      }
      GENERAL_NAMES_free(names);
    }
  }
  if (san_extensions > 1) {
    return Denied(absl::StatusCode::kPermissionDenied, "extra_san", "the CSR has more than one subjectAltName extension");
  }
  if (uris.empty()) {
    return Denied(absl::StatusCode::kPermissionDenied, "identity_mismatch",
                  absl::StrCat("the CSR has no URI SAN; it must be exactly ", want));
  }
  if (uris.size() > 1 || other_names > 0) {
    return Denied(absl::StatusCode::kPermissionDenied, "extra_san",
                  absl::StrCat("the CSR must have exactly one SAN, the URI ", want, "; it has ",
                               uris.size() + static_cast<size_t>(other_names)));
  }
  if (uris[0] != want) {
    return Denied(absl::StatusCode::kPermissionDenied, "identity_mismatch",
                  absl::StrCat("the CSR asks for ", uris[0], " but the caller is ", want));
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
    return Denied(absl::StatusCode::kInvalidArgument, "bad_validity", "validity_seconds must not be negative");
  }
  auto csr = ParseCsrPem(csr_pem);
  if (!csr.ok()) return Denied(absl::StatusCode::kInvalidArgument, "bad_csr", csr.status().message());
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr->get());
  ERR_clear_error();
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (X509_REQ_verify(csr->get(), key) != 1) {
    ERR_clear_error();
    return Denied(absl::StatusCode::kInvalidArgument, "bad_signature", "the CSR's signature does not verify");
  }
  const std::string want = identity.ToString();
  if (absl::Status s = CheckExtensions(csr->get(), want); !s.ok()) return s;

  std::chrono::seconds ttl = requested.count() == 0 ? options_.default_ttl : std::min(requested, options_.max_ttl);
  WallTime not_after = std::min({now + ttl, NotAfter(authority.certificate.get()), NotAfter(authority.root.get())});
  int usage = CertificateBuilder::kDigitalSignature;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) usage |= CertificateBuilder::kKeyEncipherment;
  auto leaf = CertificateBuilder()
                  .RandomSerial()
                  .Validity(now - options_.backdate, not_after)
                  .PublicKeyInfo(X509_REQ_get_X509_PUBKEY(csr->get()))
                  .Issuer(authority.certificate.get())
                  .BasicConstraints(false)
                  .KeyUsage(usage)
                  .ServerAndClientAuth()
                  .SubjectAltNames({want}, {}, {}, /*critical=*/true)  // the subject is empty
                  .Sign(authority.key.get());
  if (!leaf.ok()) return leaf.status();
  return Finish(std::move(*leaf), authority);
}

absl::StatusOr<IssuedCertificate> CsrSigner::SignServing(EVP_PKEY* public_key, const std::vector<std::string>& names,
                                                         std::chrono::seconds ttl, const SigningAuthority& authority,
                                                         WallTime now) const {
  std::vector<std::string> dns, ips;
  for (const auto& name : names) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
    ERR_clear_error();
    (ip != nullptr ? ips : dns).push_back(name);
    ASN1_OCTET_STRING_free(ip);
  }
  if (names.empty()) return absl::InvalidArgumentError("a serving certificate needs at least one name");
  WallTime not_after = std::min({now + ttl, NotAfter(authority.certificate.get()), NotAfter(authority.root.get())});
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
  out.leaf = std::move(leaf);
  return out;
}

}  // namespace weft::ca
