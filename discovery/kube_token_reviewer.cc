#include "discovery/kube_token_reviewer.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "discovery/kube_watcher.h"

namespace weft::discovery {

using nlohmann::json;

absl::StatusOr<TokenReviewResult> KubeTokenReviewer::ReviewToken(const std::string& token,
                                                                 const std::vector<std::string>& audiences) {
  json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", token}}}};
  if (!audiences.empty()) review["spec"]["audiences"] = audiences;
  absl::StatusOr<KubeResponse> response =
      client_.Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review.dump(), "application/json");
  if (!response.ok()) return response.status();
  if (response->status != 200 && response->status != 201) return KubeHttpError("TokenReview", *response);
  json answer = json::parse(response->body, nullptr, false);
  if (!answer.is_object() || !answer.contains("status") || !answer["status"].is_object()) {
    return absl::DataLossError("TokenReview: the answer has no status");
  }
  const json& status = answer["status"];
  TokenReviewResult result;
  result.authenticated = status.value("authenticated", false);
  result.error = status.value("error", "");
  if (status.contains("user") && status["user"].is_object()) {
    const json& user = status["user"];
    result.username = user.value("username", "");
    result.uid = user.value("uid", "");
    if (user.contains("groups") && user["groups"].is_array()) {
      for (const json& g : user["groups"]) {
        if (g.is_string()) result.groups.push_back(g);
      }
    }
  }
  if (status.contains("audiences") && status["audiences"].is_array()) {
    for (const json& a : status["audiences"]) {
      if (a.is_string()) result.audiences.push_back(a);
    }
  }
  if (result.authenticated && !audiences.empty() && result.audiences.empty()) {
    // An authenticator that ignores audiences answers without them: the
    // token was not checked against ours, so it is not accepted (client-go's
    // rule: the intersection must be non-empty).
    result.authenticated = false;
    result.error = "the API server did not confirm the token's audiences";
  }
  return result;
}

}  // namespace weft::discovery
