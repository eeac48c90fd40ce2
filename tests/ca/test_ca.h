// Shared fixtures for the CA tests: a fresh authority, CSRs, and OpenSSL's
// own verification of an issued chain against a root.
#pragma once

#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "ca/authority_factory.h"
#include "ca/csr_builder.h"
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
