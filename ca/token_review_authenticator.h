// Kubernetes bearer tokens (projected service-account tokens with the
// audience "weft-ca"), checked through the TokenReview API. The HTTP call is
// injected: `post` sends a TokenReview JSON body to
// POST /apis/authentication.k8s.io/v1/tokenreviews and returns the response
// body, so the discovery module's Kubernetes client (or a test fake) plugs in
// without this module linking an HTTP client.
#pragma once

#include <functional>
#include <string>

#include "ca/authenticator.h"

namespace weft::ca {

inline constexpr const char* kTokenAudience = "weft-ca";

class TokenReviewAuthenticator final : public Authenticator {
 public:
  using PostFunction = std::function<absl::StatusOr<std::string>(const std::string& request_json)>;

  TokenReviewAuthenticator(std::string trust_domain, PostFunction post);

  absl::string_view Name() const override { return "kubernetes"; }
  absl::StatusOr<std::optional<SpiffeId>> Authenticate(const CallerCredentials& credentials) override;

  // The request body for `token`.
  static std::string RequestJson(const std::string& token);
  // The identity in a TokenReview response: UNAUTHENTICATED when the API
  // server says no (expired, wrong audience, unknown), or the user is not a
  // service account; INTERNAL when the body is not a TokenReview.
  static absl::StatusOr<SpiffeId> ParseResponse(const std::string& response_json, const std::string& trust_domain);

 private:
  const std::string trust_domain_;
  const PostFunction post_;
};

}  // namespace weft::ca
