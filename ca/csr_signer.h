// The pure half of the CA: turns a PEM CSR plus the caller's proven identity
// and the current time into a signed SPIFFE leaf and its chain. No I/O, no
// clock, no locks: everything comes in as arguments, so the gRPC service
// (ca/certificate_service.h), the benchmark and the tests call it alike.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ca/spiffe_id.h"
#include "ca/x509.h"

namespace weft::ca {

// An intermediate that signs leaves, its key, and the certificates between
// it and its root (cert-chain.pem without the intermediate itself).
struct SigningAuthority {
  X509Ptr certificate;
  EvpPkeyPtr key;
  std::vector<X509Ptr> chain;  // the issuers above `certificate`, root last
  X509Ptr root;                // the self-signed root at the top
  EvpPkeyPtr root_key;         // null in plug-in mode (the operator keeps it)
  // PEM of what a response carries after the leaf: `certificate` and every
  // non-root issuer in `chain`.
  std::vector<std::string> chain_pem;
};
using SigningAuthorityConstSharedPtr = std::shared_ptr<const SigningAuthority>;

struct SignerOptions {
  std::chrono::seconds default_ttl = std::chrono::hours(24);
  std::chrono::seconds max_ttl = std::chrono::hours(24 * 90);
  // notBefore is this far in the past, for callers whose clocks run behind.
  std::chrono::seconds backdate = std::chrono::minutes(5);
  // CSRs above this size are refused before parsing.
  size_t max_csr_bytes = 64 * 1024;
};

struct IssuedCertificate {
  std::vector<std::string> chain_pem;  // leaf first, then the intermediates
  std::string serial_hex;
  WallTime not_before;
  WallTime not_after;
};

class CsrSigner {
 public:
  explicit CsrSigner(SignerOptions options = {});

  // Verifies the CSR (signature, key type, requested extensions) and signs a
  // leaf for `identity` valid for `requested` (0 = the default; capped by the
  // maximum and by the authority's own expiry). INVALID_ARGUMENT for an
  // unparsable CSR, a bad signature or an unsupported key; PERMISSION_DENIED
  // for another identity, extra SANs or a CA request. Errors carry a
  // DenialReason.
  absl::StatusOr<IssuedCertificate> SignCsr(absl::string_view csr_pem, const SpiffeId& identity,
                                            std::chrono::seconds requested, const SigningAuthority& authority,
                                            WallTime now) const;

  // weftd's own serving certificate: DNS and IP SANs (each entry of `names`
  // that parses as an IP address goes in as one), serverAuth + clientAuth.
  absl::StatusOr<IssuedCertificate> SignServing(EVP_PKEY* public_key, const std::vector<std::string>& names,
                                                std::chrono::seconds ttl, const SigningAuthority& authority,
                                                WallTime now) const;

  const SignerOptions& options() const { return options_; }

 private:
  absl::StatusOr<IssuedCertificate> Finish(X509Ptr leaf, const SigningAuthority& authority) const;

  SignerOptions options_;
};

// Why a request was refused, as a metric label (`reason`): "identity_mismatch",
// "extra_san", "ca_request", "bad_csr", "bad_signature", "unsupported_key",
// "unauthenticated", ...; "" when the status carries none.
std::string DenialReason(const absl::Status& status);
absl::Status Denied(absl::StatusCode code, absl::string_view reason, absl::string_view message);

}  // namespace weft::ca
