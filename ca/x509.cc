#include "ca/x509.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace weft::ca {
namespace {

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;

// Never prompt on a terminal for a passphrase: encrypted keys are refused.
int NoPassword(char*, int, int, void*) { return 0; }

BioPtr ReadBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

WallTime FromAsn1Time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return WallTime{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

X509Ptr Share(X509* cert) {
  if (cert != nullptr) X509_up_ref(cert);
  return X509Ptr(cert);
}

EvpPkeyPtr Share(EVP_PKEY* key) {
  if (key != nullptr) EVP_PKEY_up_ref(key);
  return EvpPkeyPtr(key);
}

std::vector<X509Ptr> Share(const std::vector<X509Ptr>& certs) {
  std::vector<X509Ptr> out;
  out.reserve(certs.size());
  for (const auto& c : certs) out.push_back(Share(c.get()));
  return out;
}

absl::Status OpenSslError(absl::StatusCode code, absl::string_view what) {
  std::string detail = DrainOpenSslErrors();
  return absl::Status(code, detail.empty() ? std::string(what) : absl::StrCat(what, ": ", detail));
}

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void Sha256(absl::string_view data, unsigned char* out) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>> ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  if (kSha256 == nullptr || !ctx || EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out, &len) != 1) {
    std::abort();  // no SHA-256 in this OpenSSL: nothing would work
  }
}

absl::StatusOr<EvpPkeyPtr> GenerateEcP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError(absl::StatusCode::kInternal, "generating an ECDSA P-256 key");
  return key;
}

absl::StatusOr<std::vector<X509Ptr>> ParseCertificatesPem(absl::string_view pem) {
  BioPtr bio = ReadBio(pem);
  if (!bio) return OpenSslError(absl::StatusCode::kInternal, "BIO_new_mem_buf");
  std::vector<X509Ptr> out;
  ERR_clear_error();
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
    if (!cert) {
      unsigned long e = ERR_peek_last_error();
      if (!out.empty() && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();  // the end of the input
        break;
      }
      return OpenSslError(absl::StatusCode::kInvalidArgument,
                          out.empty() ? "no PEM certificate" : "unparsable PEM certificate");
    }
    out.push_back(std::move(cert));
  }
  return out;
}

absl::StatusOr<X509Ptr> ParseCertificatePem(absl::string_view pem) {
  auto certs = ParseCertificatesPem(pem);
  if (!certs.ok()) return certs.status();
  if (certs->size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("want one PEM certificate, got ", certs->size()));
  }
  return std::move(certs->front());
}

absl::StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(absl::string_view pem) {
  BioPtr bio = ReadBio(pem);
  ERR_clear_error();
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (!key)
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "no usable PEM private key (encrypted keys are not supported)");
  return key;
}

absl::StatusOr<X509ReqPtr> ParseCsrPem(absl::string_view pem) {
  BioPtr bio = ReadBio(pem);
  ERR_clear_error();
  X509ReqPtr csr(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassword, nullptr));
  if (!csr) return OpenSslError(absl::StatusCode::kInvalidArgument, "not a PEM PKCS#10 certificate request");
  return csr;
}

std::string CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return BioToString(bio.get());
}

std::string CertificatesToPem(const std::vector<X509Ptr>& certs) {
  std::string out;
  for (const auto& c : certs) out += CertificateToPem(c.get());
  return out;
}

std::string PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return BioToString(bio.get());
}

std::string CsrToPem(X509_REQ* csr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), csr);
  return BioToString(bio.get());
}

WallTime NotBefore(const X509* cert) { return FromAsn1Time(X509_get0_notBefore(cert)); }
WallTime NotAfter(const X509* cert) { return FromAsn1Time(X509_get0_notAfter(cert)); }

std::string SerialHex(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string SubjectString(const X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  return BioToString(bio.get());
}

std::vector<std::string> UriSans(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

bool IsSelfSigned(X509* cert) {
  bool self = X509_self_signed(cert, 1) == 1;
  ERR_clear_error();
  return self;
}

bool IsCa(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

bool KeyMatchesCertificate(EVP_PKEY* key, X509* cert) {
  bool match = X509_check_private_key(cert, key) == 1;
  ERR_clear_error();
  return match;
}

absl::StatusOr<X509StorePtr> MakeTrustStore(const std::vector<X509Ptr>& roots) {
  X509StorePtr store(X509_STORE_new());
  if (!store) return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_new");
  for (const auto& root : roots) {
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_add_cert");
    }
  }
  return store;
}

absl::Status VerifyCertificate(X509_STORE* store, X509* leaf, const std::vector<X509Ptr>& intermediates,
                               WallTime at) {
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  struct StackFree {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
  };
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (!ctx || !untrusted) return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_CTX_new");
  for (const auto& c : intermediates) sk_X509_push(untrusted.get(), c.get());
  if (X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::UnauthenticatedError(
        absl::StrCat("certificate does not verify: ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

}  // namespace weft::ca
