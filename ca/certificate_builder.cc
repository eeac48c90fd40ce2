#include "ca/certificate_builder.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"

namespace weft::ca {
namespace {

using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;

absl::Status Failed(absl::string_view what) { return OpenSslError(absl::StatusCode::kInternal, what); }

// Explicitly fetched once: OpenSSL 3's implicit fetch per call is measurable
// at thousands of certificates a second.
const EVP_MD* Sha1() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return md;
}

}  // namespace

CertificateBuilder::CertificateBuilder() : cert_(X509_new()) {
  if (!cert_ || X509_set_version(cert_.get(), X509_VERSION_3) != 1) error_ = Failed("X509_new");
}

CertificateBuilder& CertificateBuilder::RandomSerial() {
  if (!error_.ok()) return *this;
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    error_ = Failed("RAND_bytes");
    return *this;
  }
  bytes[0] |= 0x01;  // never a short (or zero) serial: keep all 16 octets significant
  BIGNUM* bn = BN_bin2bn(bytes, sizeof(bytes), nullptr);
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert_.get())) == nullptr) {
    error_ = Failed("serial number");
  }
  BN_free(bn);
  return *this;
}

CertificateBuilder& CertificateBuilder::Validity(WallTime not_before, WallTime not_after) {
  if (!error_.ok()) return *this;
  if (ASN1_TIME_set(X509_getm_notBefore(cert_.get()), std::chrono::system_clock::to_time_t(not_before)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert_.get()), std::chrono::system_clock::to_time_t(not_after)) ==
          nullptr) {
    error_ = Failed("validity");
  }
  return *this;
}

CertificateBuilder& CertificateBuilder::Subject(const std::vector<std::pair<std::string, std::string>>& fields) {
  if (!error_.ok()) return *this;
  X509_NAME* name = X509_get_subject_name(cert_.get());
  for (const auto& [field, value] : fields) {
    if (X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) != 1) {
      error_ = Failed(absl::StrCat("subject ", field));
      return *this;
    }
  }
  return *this;
}

CertificateBuilder& CertificateBuilder::PublicKey(EVP_PKEY* key) {
  if (!error_.ok()) return *this;
  if (X509_set_pubkey(cert_.get(), key) != 1) error_ = Failed("public key");
  return *this;
}

CertificateBuilder& CertificateBuilder::PublicKeyInfo(X509_PUBKEY* spki) {
  if (!error_.ok()) return *this;
  ASN1_OBJECT* algorithm = nullptr;
  const unsigned char* bits = nullptr;
  int bits_len = 0;
  X509_ALGOR* algor = nullptr;
  if (X509_PUBKEY_get0_param(&algorithm, &bits, &bits_len, &algor, spki) != 1 || bits_len <= 0) {
    error_ = Failed("public key info");
    return *this;
  }
  const ASN1_OBJECT* aobj = nullptr;
  int ptype = V_ASN1_UNDEF;
  const void* pval = nullptr;
  X509_ALGOR_get0(&aobj, &ptype, &pval, algor);
  void* param = nullptr;
  if (ptype == V_ASN1_OBJECT) {
    param = OBJ_dup(static_cast<const ASN1_OBJECT*>(pval));
  } else if (ptype == V_ASN1_SEQUENCE) {
    param = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(pval));
  } else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) {
    error_ = absl::InvalidArgumentError("unsupported public key parameters");
    return *this;
  }
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(bits, static_cast<size_t>(bits_len)));
  X509_PUBKEY* target = X509_get_X509_PUBKEY(cert_.get());
  if (copy == nullptr || target == nullptr ||
      X509_PUBKEY_set0_param(target, OBJ_dup(aobj), ptype, param, copy, bits_len) != 1) {
    error_ = Failed("public key info");
  }
  return *this;
}

CertificateBuilder& CertificateBuilder::Issuer(X509* issuer) {
  issuer_ = issuer;
  return *this;
}

CertificateBuilder& CertificateBuilder::BasicConstraints(bool ca, int path_len) {
  if (!error_.ok()) return *this;
  BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
  bc->ca = ca ? 0xFF : 0;
  if (ca && path_len >= 0) {
    bc->pathlen = ASN1_INTEGER_new();
    ASN1_INTEGER_set(bc->pathlen, path_len);
  }
  if (X509_add1_ext_i2d(cert_.get(), NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) != 1) {
    error_ = Failed("basicConstraints");
  }
  BASIC_CONSTRAINTS_free(bc);
  return *this;
}

CertificateBuilder& CertificateBuilder::KeyUsage(int bits) {
  if (!error_.ok()) return *this;
  ASN1_BIT_STRING* ku = ASN1_BIT_STRING_new();
  for (int bit = 0; bit < 9; ++bit) {
    if ((bits & (1 << bit)) != 0) ASN1_BIT_STRING_set_bit(ku, bit, 1);
  }
  if (X509_add1_ext_i2d(cert_.get(), NID_key_usage, ku, 1, X509V3_ADD_REPLACE) != 1) error_ = Failed("keyUsage");
  ASN1_BIT_STRING_free(ku);
  return *this;
}

CertificateBuilder& CertificateBuilder::ServerAndClientAuth() {
  if (!error_.ok()) return *this;
  EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
  sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
  sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
  if (X509_add1_ext_i2d(cert_.get(), NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) != 1) {
    error_ = Failed("extendedKeyUsage");
  }
  sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);  // static objects: free is a no-op for them
  return *this;
}

CertificateBuilder& CertificateBuilder::SubjectAltNames(const std::vector<std::string>& uris,
                                                        const std::vector<std::string>& dns,
                                                        const std::vector<std::string>& ips, bool critical) {
  if (!error_.ok()) return *this;
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  auto add_string = [&](int type, const std::string& value) {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
    GENERAL_NAME* gn = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(gn, type, s);
    sk_GENERAL_NAME_push(names, gn);
  };
  for (const auto& u : uris) add_string(GEN_URI, u);
  for (const auto& d : dns) add_string(GEN_DNS, d);
  for (const auto& ip : ips) {
    ASN1_OCTET_STRING* addr = a2i_IPADDRESS(ip.c_str());
    if (addr == nullptr) {
      error_ = absl::InvalidArgumentError(absl::StrCat("not an IP address: ", ip));
      ERR_clear_error();
      break;
    }
    GENERAL_NAME* gn = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(gn, GEN_IPADD, addr);
    sk_GENERAL_NAME_push(names, gn);
  }
  if (error_.ok() &&
      X509_add1_ext_i2d(cert_.get(), NID_subject_alt_name, names, critical ? 1 : 0, X509V3_ADD_REPLACE) != 1) {
    error_ = Failed("subjectAltName");
  }
  GENERAL_NAMES_free(names);
  return *this;
}

absl::StatusOr<X509Ptr> CertificateBuilder::Sign(EVP_PKEY* issuer_key) {
  if (!error_.ok()) return error_;
  X509* cert = cert_.get();
  X509_NAME* issuer_name = issuer_ != nullptr ? X509_get_subject_name(issuer_) : X509_get_subject_name(cert);
  if (X509_set_issuer_name(cert, issuer_name) != 1) return Failed("issuer name");

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_pubkey_digest(cert, Sha1(), md, &md_len) != 1) return Failed("subjectKeyIdentifier");
  ASN1_OCTET_STRING* ski = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(ski, md, static_cast<int>(md_len));
  int ok = X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE);
  const ASN1_OCTET_STRING* issuer_ski = issuer_ != nullptr ? X509_get0_subject_key_id(issuer_) : ski;
  if (ok == 1 && issuer_ski != nullptr) {
    AUTHORITY_KEYID* aki = AUTHORITY_KEYID_new();
    aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
    ok = X509_add1_ext_i2d(cert, NID_authority_key_identifier, aki, 0, X509V3_ADD_REPLACE);
    AUTHORITY_KEYID_free(aki);
  }
  ASN1_OCTET_STRING_free(ski);
  if (ok != 1) return Failed("key identifiers");

  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, issuer_key, nullptr) != 1) {
    return Failed("EVP_DigestSignInit_ex");
  }
  if (X509_sign_ctx(cert, ctx.get()) <= 0) return Failed("signing the certificate");
  return std::move(cert_);
}

}  // namespace weft::ca
