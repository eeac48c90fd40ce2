// How the CA learns who is calling (DESIGN.md §5): a bearer token checked
// against tokens.yaml (file mode) or the Kubernetes TokenReview API, or the
// caller's current mesh certificate on the TLS port (renewal). The gRPC
// service extracts CallerCredentials and asks each Authenticator in turn.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "ca/spiffe_id.h"

namespace weft::ca {

// What the transport tells us about the caller; no gRPC types.
struct CallerCredentials {
  std::string bearer_token;   // from `authorization: Bearer <token>`; "" when absent
  std::string peer_cert_pem;  // the TLS client certificate; "" when none was presented
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;

  // For logs and metrics: "token-file", "kubernetes", "mesh-certificate".
  virtual absl::string_view Name() const = 0;

  // nullopt: these credentials are not of this authenticator's kind (no
  // token, no certificate). An identity: proven. UNAUTHENTICATED (or
  // UNAVAILABLE when a backend is down): the credentials were checked and
  // failed.
  virtual absl::StatusOr<std::optional<SpiffeId>> Authenticate(const CallerCredentials& credentials) = 0;
};
using AuthenticatorPtr = std::unique_ptr<Authenticator>;

}  // namespace weft::ca
