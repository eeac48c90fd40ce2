// Makes and checks signing authorities: a new self-signed root with an
// intermediate (first start and root rotation), and the consistency checks
// applied to a stored or operator-provided (plug-in) CA before it is used.
// Called by RootRotator.
#pragma once

#include <chrono>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "ca/csr_signer.h"

namespace weft::ca {

// A new ECDSA P-256 root (self-signed, `ttl` long) and an intermediate it
// signs with the same lifetime, both valid from `now` (backdated by the
// signer's usual 5 minutes).
absl::StatusOr<SigningAuthorityConstSharedPtr> CreateAuthority(const std::string& trust_domain,
                                                               std::chrono::seconds ttl, WallTime now);

// The PEM files of an authority (the widespread ca-cert/ca-key/cert-chain
// layout plus root-key.pem when Weft made the root).
struct AuthorityPem {
  std::string ca_cert;
  std::string ca_key;
  std::string cert_chain;  // the intermediate, then its issuers up to the root
  std::string root_cert;   // the root alone
  std::string root_key;    // "" in plug-in mode
};
AuthorityPem ToPem(const SigningAuthority& authority);

// Builds an authority from PEM and checks it: the key matches the
// certificate, the certificate is a CA, it chains (through cert-chain) to one
// of `trusted_roots` and is valid at `now`, and root_key (when given) matches
// that root. Errors name the file at fault, e.g. "ca-key.pem does not match
// ca-cert.pem".
absl::StatusOr<SigningAuthorityConstSharedPtr> LoadAuthority(absl::string_view ca_cert_pem,
                                                             absl::string_view ca_key_pem,
                                                             absl::string_view cert_chain_pem,
                                                             absl::string_view root_key_pem,
                                                             const std::vector<X509Ptr>& trusted_roots, WallTime now,
                                                             absl::string_view file_prefix = "");

}  // namespace weft::ca
