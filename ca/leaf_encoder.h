// Encodes and signs a workload leaf certificate directly in DER, without
// building an OpenSSL X509 object field by field (which, with OpenSSL 3.0's
// ASN.1 and provider layers, cost more than the signature itself). Called by
// CsrSigner on every issuance; the content is the same as CertificateBuilder
// would produce for a workload (see ca/csr_signer.h).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "ca/x509.h"

namespace weft::ca {

struct LeafFields {
  absl::string_view public_key_info;  // SubjectPublicKeyInfo as encoded (the CSR's)
  absl::string_view public_key;       // its key bits, for the subjectKeyIdentifier
  absl::string_view uri;              // the only SAN (critical: the subject is empty)
  bool key_encipherment = false;      // RSA keys
  WallTime not_before;
  WallTime not_after;
};

struct EncodedLeaf {
  std::string der;
  std::string serial_hex;  // lowercase, two digits per octet
};

// A 128-bit random serial; CA:FALSE; digitalSignature (+keyEncipherment);
// serverAuth + clientAuth; SKI and AKI; signed with SHA-256 by `issuer_key`
// (ECDSA or RSA PKCS#1 v1.5).
absl::StatusOr<EncodedLeaf> EncodeLeaf(const LeafFields& fields, X509* issuer, EVP_PKEY* issuer_key);

// PEM with 64-character lines, e.g. label "CERTIFICATE".
std::string DerToPem(absl::string_view der, absl::string_view label);

}  // namespace weft::ca
