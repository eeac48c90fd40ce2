#include "ca/token_review_authenticator.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace weft::ca {

using nlohmann::json;

TokenReviewAuthenticator::TokenReviewAuthenticator(std::string trust_domain, PostFunction post)
    : trust_domain_(std::move(trust_domain)), post_(std::move(post)) {}

std::string TokenReviewAuthenticator::RequestJson(const std::string& token) {
  return json{{"apiVersion", "authentication.k8s.io/v1"},
              {"kind", "TokenReview"},
              {"spec", {{"token", token}, {"audiences", json::array({kTokenAudience})}}}}
      .dump();
}

absl::StatusOr<SpiffeId> TokenReviewAuthenticator::ParseResponse(const std::string& response_json,
                                                                 const std::string& trust_domain) {
  json doc = json::parse(response_json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || doc.value("kind", "") != "TokenReview" || !doc.contains("status") ||
      !doc["status"].is_object()) {
    return absl::InternalError("the TokenReview response is not a TokenReview");
  }
  const json& status = doc["status"];
  if (!status.value("authenticated", false)) {
    std::string error = status.contains("error") && status["error"].is_string() ? status["error"].get<std::string>()
                                                                                : "not authenticated";
    return absl::UnauthenticatedError(absl::StrCat("Kubernetes rejected the token: ", error));
  }
  // The API server lists the requested audiences the token is valid for.
  bool audience_ok = false;
  if (status.contains("audiences") && status["audiences"].is_array()) {
    for (const auto& a : status["audiences"]) audience_ok |= a.is_string() && a.get<std::string>() == kTokenAudience;
  }
  if (!audience_ok) {
    return absl::UnauthenticatedError(absl::StrCat("the token is not meant for the audience ", kTokenAudience));
  }
  std::string username;
  if (status.contains("user") && status["user"].is_object() && status["user"].contains("username") &&
      status["user"]["username"].is_string()) {
    username = status["user"]["username"].get<std::string>();
  }
  std::vector<std::string> parts = absl::StrSplit(username, ':');
  if (parts.size() != 4 || parts[0] != "system" || parts[1] != "serviceaccount" ||
      !IsValidIdentitySegment(parts[2]) || !IsValidIdentitySegment(parts[3])) {
    return absl::UnauthenticatedError(
        absl::StrCat("the token belongs to \"", username, "\", not a service account (system:serviceaccount:NS:SA)"));
  }
  return SpiffeId{trust_domain, parts[2], parts[3]};
}

absl::StatusOr<std::optional<SpiffeId>> TokenReviewAuthenticator::Authenticate(
    const CallerCredentials& credentials) {
  if (credentials.bearer_token.empty()) return std::nullopt;
  auto response = post_(RequestJson(credentials.bearer_token));
  if (!response.ok()) {
    return absl::UnavailableError(absl::StrCat("TokenReview failed: ", response.status().message()));
  }
  auto id = ParseResponse(*response, trust_domain_);
  if (!id.ok()) return id.status();
  return *id;
}

}  // namespace weft::ca
