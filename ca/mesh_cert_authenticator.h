// Renewal: a caller that presents its current mesh certificate as the TLS
// client certificate is the identity in that certificate's URI SAN, once the
// certificate verifies against the current trust bundle (through the CA's
// own intermediates) and has not expired. The TLS layer only requests the
// certificate; this is where it is checked.
#pragma once

#include <string>

#include "ca/authenticator.h"
#include "ca/ca_view.h"
#include "common/clock.h"

namespace weft::ca {

class MeshCertAuthenticator final : public Authenticator {
 public:
  MeshCertAuthenticator(const TrustSource& trust, std::string trust_domain, const common::Clock& clock);

  absl::string_view Name() const override { return "mesh-certificate"; }
  absl::StatusOr<std::optional<SpiffeId>> Authenticate(const CallerCredentials& credentials) override;

 private:
  const TrustSource& trust_;
  const std::string trust_domain_;
  const common::Clock& clock_;
};

}  // namespace weft::ca
