// Shared fixtures for the CA tests (and the proxy's TLS tests): a fresh
// authority, CSRs, issued workload certificates, and OpenSSL's own
// verification of an issued chain against a root.
#pragma once

#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "ca/authority_factory.h"
#include "ca/csr_builder.h"
#include "ca/csr_signer.h"
#include "ca/spiffe_id.h"
#include "ca/x509.h"

namespace weft::ca::testing {

inline const WallTime kNow = WallTime(std::chrono::seconds(1'700'000'000));

inline SigningAuthorityConstSharedPtr NewAuthority(WallTime now = kNow) {
  auto a = CreateAuthority("cluster.local", std::chrono::hours(24 * 3650), now);
  if (!a.ok()) std::abort();
  return *a;
}

inline EvpPkeyPtr NewKey() { return std::move(GenerateEcP256Key()).value(); }

inline std::string Csr(EVP_PKEY* key, CsrFields fields) { return MakeCsrPem(key, fields).value(); }

inline std::string CsrFor(const std::string& uri) {
  EvpPkeyPtr key = NewKey();
  return Csr(key.get(), CsrFields{{uri}, {}, false, ""});
}

// What a workload holds after CreateCertificate: its own key and the chain
// the CA issued for `spiffe_id` (the CA's default lifetime).
struct IssuedWorkload {
  EvpPkeyPtr key;
  std::vector<X509Ptr> chain;
};
inline IssuedWorkload IssueWorkload(const SigningAuthority& authority, const std::string& spiffe_id,
                                    WallTime now) {
  IssuedWorkload out;
  out.key = NewKey();
  const SpiffeId id = SpiffeId::Parse(spiffe_id).value();
  auto issued = CsrSigner()
                    .SignCsr(Csr(out.key.get(), CsrFields{{spiffe_id}, {}, false, ""}), id,
                             std::chrono::seconds(0), authority, now)
                    .value();
  out.chain = ParseCertificatesPem(absl::StrJoin(issued.chain_pem, "")).value();
  return out;
}

// X509_verify_cert of chain[0] against `roots`, chain[1..] untrusted, at `at`.
inline absl::Status VerifyChainPem(const std::vector<std::string>& chain_pem, const std::vector<X509Ptr>& roots,
                                   WallTime at) {
  std::vector<X509Ptr> certs;
  for (const auto& pem : chain_pem) {
    auto c = ParseCertificatePem(pem);
    if (!c.ok()) return c.status();
    certs.push_back(std::move(*c));
  }
  auto store = MakeTrustStore(roots);
  if (!store.ok()) return store.status();
  std::vector<X509Ptr> untrusted;
  for (size_t i = 1; i < certs.size(); ++i) untrusted.push_back(Share(certs[i].get()));
  return VerifyCertificate(store->get(), certs[0].get(), untrusted, at);
}

inline std::vector<X509Ptr> Roots(const SigningAuthority& a) {
  std::vector<X509Ptr> r;
  r.push_back(Share(a.root.get()));
  return r;
}

}  // namespace weft::ca::testing
