#include "ca/authority_factory.h"

#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "ca/certificate_builder.h"
#include "common/clock.h"

namespace weft::ca {
namespace {

constexpr std::chrono::minutes kBackdate(5);

SigningAuthorityConstSharedPtr Assemble(X509Ptr cert, EvpPkeyPtr key, std::vector<X509Ptr> chain, X509Ptr root,
                                        EvpPkeyPtr root_key) {
  auto authority = std::make_shared<SigningAuthority>();
  authority->chain_pem.push_back(CertificateToPem(cert.get()));
  for (const auto& c : chain) {
    if (!IsSelfSigned(c.get())) authority->chain_pem.push_back(CertificateToPem(c.get()));
  }
  authority->certificate = std::move(cert);
  authority->key = std::move(key);
  authority->chain = std::move(chain);
  authority->root = std::move(root);
  authority->root_key = std::move(root_key);
  return authority;
}

}  // namespace

absl::StatusOr<SigningAuthorityConstSharedPtr> CreateAuthority(const std::string& trust_domain,
                                                               std::chrono::seconds ttl, WallTime now) {
  auto root_key = GenerateEcP256Key();
  if (!root_key.ok()) return root_key.status();
  auto key = GenerateEcP256Key();
  if (!key.ok()) return key.status();
  const std::string tag = common::Rfc3339Utc(now);
  auto root = CertificateBuilder()
                  .RandomSerial()
                  .Validity(now - kBackdate, now + ttl)
                  .Subject({{"O", trust_domain}, {"CN", "Weft Root CA " + tag}})
                  .PublicKey(root_key->get())
                  .Issuer(nullptr)
                  .BasicConstraints(true)
                  .KeyUsage(CertificateBuilder::kKeyCertSign | CertificateBuilder::kCrlSign)
                  .Sign(root_key->get());
  if (!root.ok()) return root.status();
  auto intermediate = CertificateBuilder()
                          .RandomSerial()
                          .Validity(now - kBackdate, now + ttl)
                          .Subject({{"O", trust_domain}, {"CN", "Weft Intermediate CA " + tag}})
                          .PublicKey(key->get())
                          .Issuer(root->get())
                          .BasicConstraints(true, /*path_len=*/0)
                          .KeyUsage(CertificateBuilder::kKeyCertSign | CertificateBuilder::kCrlSign |
                                    CertificateBuilder::kDigitalSignature)
                          .Sign(root_key->get());
  if (!intermediate.ok()) return intermediate.status();
  std::vector<X509Ptr> chain;
  chain.push_back(Share(root->get()));
  return Assemble(std::move(*intermediate), std::move(*key), std::move(chain), std::move(*root),
                  std::move(*root_key));
}

AuthorityPem ToPem(const SigningAuthority& authority) {
  AuthorityPem pem;
  pem.ca_cert = CertificateToPem(authority.certificate.get());
  pem.ca_key = PrivateKeyToPem(authority.key.get());
  pem.cert_chain = pem.ca_cert + CertificatesToPem(authority.chain);
  pem.root_cert = CertificateToPem(authority.root.get());
  if (authority.root_key) pem.root_key = PrivateKeyToPem(authority.root_key.get());
  return pem;
}

absl::StatusOr<SigningAuthorityConstSharedPtr> LoadAuthority(absl::string_view ca_cert_pem,
                                                             absl::string_view ca_key_pem,
                                                             absl::string_view cert_chain_pem,
                                                             absl::string_view root_key_pem,
                                                             const std::vector<X509Ptr>& trusted_roots, WallTime now,
                                                             absl::string_view prefix) {
  auto file = [&](absl::string_view name) { return absl::StrCat(prefix, name); };
  auto certs = ParseCertificatesPem(ca_cert_pem);
  if (!certs.ok()) return absl::InvalidArgumentError(absl::StrCat(file("ca-cert.pem"), ": ", certs.status().message()));
  X509Ptr cert = std::move(certs->front());
  auto key = ParsePrivateKeyPem(ca_key_pem);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat(file("ca-key.pem"), ": ", key.status().message()));
  if (!KeyMatchesCertificate(key->get(), cert.get())) {
    return absl::InvalidArgumentError(absl::StrCat(file("ca-key.pem"), " does not match ", file("ca-cert.pem"),
                                                   " (the public keys differ)"));
  }
  if (!IsCa(cert.get())) {
    return absl::InvalidArgumentError(
        absl::StrCat(file("ca-cert.pem"), " is not a CA certificate (basicConstraints CA:TRUE is missing)"));
  }
  auto chain = ParseCertificatesPem(cert_chain_pem);
  if (!chain.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file("cert-chain.pem"), ": ", chain.status().message()));
  }
  // cert-chain.pem starts with ca-cert.pem in the usual layout; keep only the issuers above it.
  if (X509_cmp(chain->front().get(), cert.get()) == 0) chain->erase(chain->begin());
  if (trusted_roots.empty()) return absl::InvalidArgumentError("root-cert.pem holds no certificate");

  // The root: the self-signed top of the chain, else the trusted root that issued the last certificate.
  X509* top = chain->empty() ? cert.get() : chain->back().get();
  X509Ptr root;
  if (IsSelfSigned(top)) {
    root = Share(top);
  } else {
    for (const auto& r : trusted_roots) {
      if (X509_check_issued(r.get(), top) == X509_V_OK) root = Share(r.get());
    }
  }
  if (!root) {
    return absl::InvalidArgumentError(absl::StrCat(file("cert-chain.pem"), " does not end at a root in root-cert.pem"));
  }
  auto store = MakeTrustStore(trusted_roots);
  if (!store.ok()) return store.status();
  if (absl::Status s = VerifyCertificate(store->get(), cert.get(), *chain, now); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file("ca-cert.pem"), " does not chain to root-cert.pem through ", file("cert-chain.pem"), ": ",
                     s.message()));
  }
  EvpPkeyPtr root_key;
  if (!root_key_pem.empty()) {
    auto parsed = ParsePrivateKeyPem(root_key_pem);
    if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(file("root-key.pem"), ": ", parsed.status().message()));
    if (!KeyMatchesCertificate(parsed->get(), root.get())) {
      return absl::InvalidArgumentError(absl::StrCat(file("root-key.pem"), " does not match the root in ",
                                                     file("cert-chain.pem")));
    }
    root_key = std::move(*parsed);
  }
  return Assemble(std::move(cert), std::move(*key), std::move(*chain), std::move(root), std::move(root_key));
}

}  // namespace weft::ca
