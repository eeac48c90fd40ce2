#include "ca/mesh_cert_authenticator.h"

#include "absl/strings/str_cat.h"

namespace weft::ca {

MeshCertAuthenticator::MeshCertAuthenticator(const TrustSource& trust, std::string trust_domain,
                                             const common::Clock& clock)
    : trust_(trust), trust_domain_(std::move(trust_domain)), clock_(clock) {}

absl::StatusOr<std::optional<SpiffeId>> MeshCertAuthenticator::Authenticate(const CallerCredentials& credentials) {
  if (credentials.peer_cert_pem.empty()) return std::nullopt;
  auto certs = ParseCertificatesPem(credentials.peer_cert_pem);
  if (!certs.ok()) return absl::UnauthenticatedError("the client certificate is not parsable");
  X509* leaf = certs->front().get();
  CaViewConstSharedPtr view = trust_.Current();
  std::vector<X509Ptr> intermediates = Share(view->intermediates);
  for (size_t i = 1; i < certs->size(); ++i) intermediates.push_back(Share((*certs)[i].get()));
  if (absl::Status s = VerifyCertificate(view->store.get(), leaf, intermediates, clock_.WallNow()); !s.ok()) {
    return absl::UnauthenticatedError(absl::StrCat("the client certificate is not a valid mesh certificate: ",
                                                   s.message()));
  }
  if (IsCa(leaf)) return absl::UnauthenticatedError("the client certificate is a CA certificate");
  std::vector<std::string> uris = UriSans(leaf);
  if (uris.size() != 1) {
    return absl::UnauthenticatedError("the client certificate does not carry exactly one SPIFFE ID");
  }
  auto id = SpiffeId::Parse(uris[0]);
  if (!id.ok()) return absl::UnauthenticatedError(id.status().message());
  if (id->trust_domain != trust_domain_) {
    return absl::UnauthenticatedError(
        absl::StrCat("the client certificate is for trust domain ", id->trust_domain, ", not ", trust_domain_));
  }
  return *id;
}

}  // namespace weft::ca
