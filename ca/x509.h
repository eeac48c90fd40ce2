// X.509 and key helpers over OpenSSL 3's EVP APIs: owning pointers, PEM
// encoding and decoding, key generation, certificate fields and chain
// verification. Used by the CA (ca/*), weftd's wiring and the proxy. Every
// function that reads input returns a Status instead of trusting it.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft::ca {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpenSslDeleter<X509_REQ_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;

using WallTime = std::chrono::system_clock::time_point;

// One more owner of a certificate or key (OpenSSL reference counts).
X509Ptr Share(X509* cert);
EvpPkeyPtr Share(EVP_PKEY* key);
std::vector<X509Ptr> Share(const std::vector<X509Ptr>& certs);

// Drains OpenSSL's thread-local error queue into one line ("" when empty).
std::string DrainOpenSslErrors();
// A status with `what` and OpenSSL's drained error queue.
absl::Status OpenSslError(absl::StatusCode code, absl::string_view what);

// SHA-256 of `data` into `out` (32 octets), with a per-thread context and a
// digest fetched once (OpenSSL 3's one-shot SHA256() fetches on every call).
void Sha256(absl::string_view data, unsigned char* out);

// A fresh ECDSA P-256 key.
absl::StatusOr<EvpPkeyPtr> GenerateEcP256Key();

// PEM decoding. ParseCertificatesPem wants at least one certificate and
// nothing unparsable between them.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificatesPem(absl::string_view pem);
absl::StatusOr<X509Ptr> ParseCertificatePem(absl::string_view pem);  // exactly one
absl::StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(absl::string_view pem);
absl::StatusOr<X509ReqPtr> ParseCsrPem(absl::string_view pem);

// PEM encoding (PKCS#8 for private keys).
std::string CertificateToPem(X509* cert);
std::string CertificatesToPem(const std::vector<X509Ptr>& certs);
std::string PrivateKeyToPem(EVP_PKEY* key);
std::string CsrToPem(X509_REQ* csr);

// Certificate fields.
WallTime NotBefore(const X509* cert);
WallTime NotAfter(const X509* cert);
std::string SerialHex(const X509* cert);      // lowercase hex, no separators
std::string SubjectString(const X509* cert);  // RFC 2253
std::vector<std::string> UriSans(X509* cert);
bool IsSelfSigned(X509* cert);
bool IsCa(X509* cert);

// True when `key` is the private half of the certificate's public key.
bool KeyMatchesCertificate(EVP_PKEY* key, X509* cert);

// A store that trusts `roots`.
absl::StatusOr<X509StorePtr> MakeTrustStore(const std::vector<X509Ptr>& roots);

// Verifies `leaf` up to one of the store's roots at time `at`, with
// `intermediates` as untrusted helpers; the error names OpenSSL's reason.
absl::Status VerifyCertificate(X509_STORE* store, X509* leaf, const std::vector<X509Ptr>& intermediates,
                               WallTime at);

}  // namespace weft::ca
