#include "ca/csr_builder.h"

#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"

namespace weft::ca {
namespace {

struct ExtensionsFree {
  void operator()(STACK_OF(X509_EXTENSION) * s) const { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
};

absl::Status Failed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("building a CSR: ", what, ": ", DrainOpenSslErrors()));
}

}  // namespace

absl::StatusOr<std::string> MakeCsrPem(EVP_PKEY* key, const CsrFields& fields) {
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1) return Failed("X509_REQ_new");
  if (!fields.common_name.empty()) {
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(fields.common_name.c_str()), -1, -1, 0);
  }
  if (X509_REQ_set_pubkey(req.get(), key) != 1) return Failed("public key");
  std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionsFree> exts(sk_X509_EXTENSION_new_null());
  STACK_OF(X509_EXTENSION)* raw = exts.get();
  if (!fields.uri_sans.empty() || !fields.dns_sans.empty()) {
    GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
    auto add = [&](int type, const std::string& v) {
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      ASN1_STRING_set(s, v.data(), static_cast<int>(v.size()));
      GENERAL_NAME* gn = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(gn, type, s);
      sk_GENERAL_NAME_push(names, gn);
    };
    for (const auto& u : fields.uri_sans) add(GEN_URI, u);
    for (const auto& d : fields.dns_sans) add(GEN_DNS, d);
    int ok = X509V3_add1_i2d(&raw, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(names);
    if (ok != 1) return Failed("subjectAltName");
  }
  if (fields.request_ca) {
    BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
    bc->ca = 0xFF;
    int ok = X509V3_add1_i2d(&raw, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT);
    BASIC_CONSTRAINTS_free(bc);
    if (ok != 1) return Failed("basicConstraints");
  }
  if (sk_X509_EXTENSION_num(raw) > 0 && X509_REQ_add_extensions(req.get(), raw) != 1) return Failed("extensions");
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return Failed("signing");
  return CsrToPem(req.get());
}

}  // namespace weft::ca
