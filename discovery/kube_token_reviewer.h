// Kubernetes TokenReview (authentication.k8s.io/v1): asks the API server
// whether a bearer token (a projected service-account token presented to the
// CA) is valid for the given audiences and whom it names. The CA's
// Kubernetes authenticator calls ReviewToken; weftd's wiring hands it over
// as a plain function so that ca/ does not depend on discovery/.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "discovery/kube_client.h"

namespace weft::discovery {

struct TokenReviewResult {
  bool authenticated = false;
  std::string username;  // "system:serviceaccount:NS:SA" for service accounts
  std::string uid;
  std::vector<std::string> groups;
  std::vector<std::string> audiences;  // the requested audiences the token is valid for
  std::string error;                   // the server's reason when not authenticated
};

class KubeTokenReviewer {
 public:
  explicit KubeTokenReviewer(KubeClient& client) : client_(client) {}

  // An error Status only when the review itself failed (unreachable server,
  // weftd not allowed to create tokenreviews); an invalid token is an OK
  // result with authenticated=false.
  absl::StatusOr<TokenReviewResult> ReviewToken(const std::string& token,
                                                const std::vector<std::string>& audiences);

 private:
  KubeClient& client_;
};

}  // namespace weft::discovery
