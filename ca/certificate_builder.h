// Builds one X.509 v3 certificate field by field and signs it. Shared by the
// workload signer (CsrSigner) and the root/intermediate factory
// (authority_factory.h); not for use outside ca/.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ca/x509.h"

namespace weft::ca {

class CertificateBuilder {
 public:
  CertificateBuilder();

  // A 128-bit random serial number.
  CertificateBuilder& RandomSerial();
  CertificateBuilder& Validity(WallTime not_before, WallTime not_after);
  // Subject from (field, value) pairs such as {"O", "Weft"}, {"CN", "..."}; none leaves it empty.
  CertificateBuilder& Subject(const std::vector<std::pair<std::string, std::string>>& fields);
  CertificateBuilder& PublicKey(EVP_PKEY* key);
  // The same from an encoded SubjectPublicKeyInfo (a CSR's): copies the
  // algorithm and key bits as they are, without OpenSSL 3.0's slow
  // re-encoding of an EVP_PKEY (a third of an issuance's time otherwise).
  CertificateBuilder& PublicKeyInfo(X509_PUBKEY* spki);
  // Issuer name and AKI from `issuer`; nullptr means self-signed (issuer =
  // subject, AKI = own SKI).
  CertificateBuilder& Issuer(X509* issuer);
  CertificateBuilder& BasicConstraints(bool ca, int path_len = -1);
  // Key usage bits as in RFC 5280 (KeyUsage::kDigitalSignature | ...).
  CertificateBuilder& KeyUsage(int bits);
  CertificateBuilder& ServerAndClientAuth();
  // Subject alternative names: URIs, DNS names, IP addresses (textual).
  // `critical` is required when the subject is empty (RFC 5280 4.2.1.6).
  CertificateBuilder& SubjectAltNames(const std::vector<std::string>& uris, const std::vector<std::string>& dns,
                                      const std::vector<std::string>& ips, bool critical);
  // Adds SKI (from the public key) and AKI, then signs with SHA-256.
  absl::StatusOr<X509Ptr> Sign(EVP_PKEY* issuer_key);

  enum KeyUsageBits {
    kDigitalSignature = 1 << 0,
    kKeyEncipherment = 1 << 2,
    kKeyCertSign = 1 << 5,
    kCrlSign = 1 << 6,
  };

 private:
  X509Ptr cert_;
  X509* issuer_ = nullptr;
  absl::Status error_;
};

}  // namespace weft::ca
