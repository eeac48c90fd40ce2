// A strict parser of PKCS#10 certificate requests (RFC 2986) for the CA's
// hot path: it takes out of the DER exactly what the signer needs (the
// signed bytes, the public key, the signature, the requested SAN and basic
// constraints) without OpenSSL 3.0's slow d2i_X509_REQ. Its input is
// untrusted: every length, tag and trailing byte is checked, and the
// result's views point into the caller's buffer. Called by CsrSigner and by
// the fuzz targets.
#pragma once

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "ca/der.h"

namespace weft::ca {

struct ParsedCsr {
  absl::string_view der;                   // the whole CertificationRequest
  absl::string_view info;                  // CertificationRequestInfo as encoded: the signed bytes
  absl::string_view subject;               // Name, as encoded
  absl::string_view public_key_info;       // SubjectPublicKeyInfo, as encoded
  absl::string_view key_algorithm;         // its algorithm OID (content octets)
  absl::string_view key_parameters;        // its parameters as encoded, "" when absent
  absl::string_view public_key;            // subjectPublicKey bits (no unused-bits octet)
  absl::string_view signature_algorithm;   // OID content octets
  absl::string_view signature_parameters;  // as encoded, "" when absent
  absl::string_view signature;             // signature bits (no unused-bits octet)

  // From the extensionRequest attribute (at most one).
  int san_extensions = 0;               // subjectAltName extensions seen
  std::vector<absl::string_view> uris;  // URI names in them
  int other_names = 0;                  // SAN entries that are not URIs
  bool requests_ca = false;             // basicConstraints with cA TRUE

  bool IsEcP256() const;
  bool IsRsa() const;
  bool SignedWithEcdsaSha256() const;
};

// Parses a DER CertificationRequest. INVALID_ARGUMENT naming the field for
// anything malformed. Does not verify the signature.
absl::StatusOr<ParsedCsr> ParseCsr(absl::string_view der);

// The DER inside one PEM block labelled CERTIFICATE REQUEST (or NEW
// CERTIFICATE REQUEST); only whitespace may surround it.
absl::StatusOr<std::string> CsrPemToDer(absl::string_view pem);

// Object identifiers (content octets) the CA compares against.
namespace oid {
inline constexpr absl::string_view kEcPublicKey = der::Bytes("\x2A\x86\x48\xCE\x3D\x02\x01");
inline constexpr absl::string_view kPrime256v1 = der::Bytes("\x2A\x86\x48\xCE\x3D\x03\x01\x07");
inline constexpr absl::string_view kEcdsaWithSha256 = der::Bytes("\x2A\x86\x48\xCE\x3D\x04\x03\x02");
inline constexpr absl::string_view kRsaEncryption = der::Bytes("\x2A\x86\x48\x86\xF7\x0D\x01\x01\x01");
inline constexpr absl::string_view kSha256WithRsa = der::Bytes("\x2A\x86\x48\x86\xF7\x0D\x01\x01\x0B");
inline constexpr absl::string_view kExtensionRequest = der::Bytes("\x2A\x86\x48\x86\xF7\x0D\x01\x09\x0E");
inline constexpr absl::string_view kSubjectAltName = der::Bytes("\x55\x1D\x11");
inline constexpr absl::string_view kBasicConstraints = der::Bytes("\x55\x1D\x13");
}  // namespace oid

}  // namespace weft::ca
