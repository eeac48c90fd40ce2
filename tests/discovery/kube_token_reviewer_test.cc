// TokenReview through the fake API server: valid tokens name their user and
// confirm the audiences; wrong audiences, unknown and expired tokens are not
// authenticated; a failed review is an error, not a "no".
#include "discovery/kube_token_reviewer.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "tests/fake_kube/kube_test_support.h"

namespace weft::discovery {
namespace {

TEST_CASE("TokenReview authenticates service-account tokens for the given audiences", "[kube][tokenreview]") {
  fake_kube::FakeApiServer server;
  REQUIRE(server.Start().ok());
  server.AddToken("orders-token", {"system:serviceaccount:shop:orders", "uid-1",
                                   {"system:serviceaccounts", "system:serviceaccounts:shop"}, {"weft"}, false});
  server.AddToken("api-token", {"system:serviceaccount:shop:api", "uid-2", {}, {}, false});
  server.AddToken("old-token", {"system:serviceaccount:shop:old", "uid-3", {}, {"weft"}, true});
  auto client = fake_kube::ClientFor(server);
  KubeTokenReviewer reviewer(*client);

  auto ok = reviewer.ReviewToken("orders-token", {"weft"});
  REQUIRE(ok.ok());
  CHECK(ok->authenticated);
  CHECK(ok->username == "system:serviceaccount:shop:orders");
  CHECK(ok->uid == "uid-1");
  CHECK(ok->audiences == std::vector<std::string>{"weft"});
  CHECK(ok->groups.size() == 2);

  auto wrong_audience = reviewer.ReviewToken("api-token", {"weft"});
  REQUIRE(wrong_audience.ok());
  CHECK(!wrong_audience->authenticated);
  CHECK(absl::StrContains(wrong_audience->error, "audience"));

  auto api_default = reviewer.ReviewToken("api-token", {});
  REQUIRE(api_default.ok());
  CHECK(api_default->authenticated);

  auto unknown = reviewer.ReviewToken("nonsense", {"weft"});
  REQUIRE(unknown.ok());
  CHECK(!unknown->authenticated);
  CHECK(!unknown->error.empty());

  auto expired = reviewer.ReviewToken("old-token", {"weft"});
  REQUIRE(expired.ok());
  CHECK(!expired->authenticated);

  server.FailNextRequests(1, 403);
  auto forbidden = reviewer.ReviewToken("orders-token", {"weft"});
  REQUIRE(!forbidden.ok());
  CHECK(absl::IsPermissionDenied(forbidden.status()));

  server.Stop();
  CHECK(absl::IsUnavailable(reviewer.ReviewToken("orders-token", {"weft"}).status()));
}

}  // namespace
}  // namespace weft::discovery
