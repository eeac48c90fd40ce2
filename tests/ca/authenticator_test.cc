// The three authenticators: file-mode tokens (parse, reload on change, keep
// the last good set), Kubernetes TokenReview JSON (request shape,
// authenticated / expired / wrong audience / not a service account), and the
// mesh certificate presented for renewal.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "ca/file_ca_store.h"
#include "ca/mesh_cert_authenticator.h"
#include "ca/token_file_authenticator.h"
#include "ca/token_review_authenticator.h"
#include "common/clock.h"
#include "tests/ca/test_ca.h"

#include <nlohmann/json.hpp>

namespace weft::ca {
namespace {

using namespace testing;
using nlohmann::json;
using std::chrono::seconds;

std::string TempDir() {
  char tmpl[] = "/tmp/weft-ca-auth-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

std::optional<SpiffeId> Expect(Authenticator& a, CallerCredentials c) {
  auto r = a.Authenticate(c);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("tokens.yaml: tokens map to identities and the file is reloaded when it changes", "[ca][auth]") {
  std::string path = TempDir() + "/tokens.yaml";
  common::FakeClock clock;
  TokenFileAuthenticator auth(path, "cluster.local", clock, std::chrono::seconds(1));

  // No file yet: no token is valid, but nothing breaks.
  CHECK(auth.Authenticate({"t-orders", ""}).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK_FALSE(Expect(auth, {"", ""}).has_value());  // no token: not this authenticator's business

  REQUIRE(WriteFileAtomically(path, R"(tokens:
- token: "t-orders"
  namespace: shop
  serviceAccount: orders
- {token: t-pay, namespace: shop, serviceAccount: payments}
)", 0600).ok());
  clock.Advance(seconds(1));
  auto id = Expect(auth, {"t-orders", ""});
  REQUIRE(id.has_value());
  CHECK(id->ToString() == "spiffe://cluster.local/ns/shop/sa/orders");
  CHECK(Expect(auth, {"t-pay", ""})->service_account == "payments");
  CHECK(auth.Authenticate({"t-nobody", ""}).status().code() == absl::StatusCode::kUnauthenticated);

  // Revoke t-orders, add t-ship.
  REQUIRE(WriteFileAtomically(path, "tokens:\n- {token: t-ship, namespace: shop, serviceAccount: shipping}\n", 0600).ok());
  clock.Advance(seconds(1));
  CHECK(auth.Authenticate({"t-orders", ""}).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(Expect(auth, {"t-ship", ""})->service_account == "shipping");

  // A broken file keeps the last good set.
  REQUIRE(WriteFileAtomically(path, "tokens: [ {token: x, namespace: Bad_NS} ]\n", 0600).ok());
  clock.Advance(seconds(1));
  CHECK(Expect(auth, {"t-ship", ""})->service_account == "shipping");
  CHECK(auth.TokenCount() == 1);
}

TEST_CASE("tokens.yaml errors name every bad entry and field", "[ca][auth]") {
  auto parsed = TokenFileAuthenticator::Parse(R"(tokens:
- {token: a, namespace: shop}
- {token: b, namespace: "Shop", serviceAccount: x}
- {token: c, namespace: shop, serviceAccount: x}
- {token: c, namespace: shop, serviceAccount: y}
)", "cluster.local");
  REQUIRE_FALSE(parsed.ok());
  std::string m(parsed.status().message());
  CHECK(m.find("tokens[0].serviceAccount: required") != std::string::npos);
  CHECK(m.find("tokens[1].namespace: not a valid name") != std::string::npos);
  CHECK(m.find("tokens[3].token: the same token") != std::string::npos);
  CHECK_FALSE(TokenFileAuthenticator::Parse("tokens: {a: b}", "cluster.local").ok());
  CHECK_FALSE(TokenFileAuthenticator::Parse("{{{", "cluster.local").ok());
  CHECK(TokenFileAuthenticator::Parse("", "cluster.local").value().empty());
}

json Review(bool authenticated, std::vector<std::string> audiences, const std::string& username,
            const std::string& error = "") {
  json status = {{"authenticated", authenticated}};
  if (authenticated) {
    status["audiences"] = audiences;
    status["user"] = {{"username", username}, {"groups", {"system:serviceaccounts"}}};
  }
  if (!error.empty()) status["error"] = error;
  return {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"status", status}};
}

TEST_CASE("TokenReview: the request asks for audience weft-ca; the response decides", "[ca][auth]") {
  std::vector<std::string> sent;
  json answer;
  TokenReviewAuthenticator auth("cluster.local", [&](const std::string& body) -> absl::StatusOr<std::string> {
    sent.push_back(body);
    if (answer.is_null()) return absl::UnavailableError("connection refused");
    return answer.dump();
  });

  SECTION("authenticated service account") {
    answer = Review(true, {"weft-ca"}, "system:serviceaccount:shop:orders");
    auto id = Expect(auth, {"jwt-token", ""});
    REQUIRE(id.has_value());
    CHECK(id->ToString() == "spiffe://cluster.local/ns/shop/sa/orders");
    REQUIRE(sent.size() == 1);
    json req = json::parse(sent[0]);
    CHECK(req["apiVersion"] == "authentication.k8s.io/v1");
    CHECK(req["kind"] == "TokenReview");
    CHECK(req["spec"]["token"] == "jwt-token");
    CHECK(req["spec"]["audiences"] == json::array({"weft-ca"}));
  }
  SECTION("expired token") {
    answer = Review(false, {}, "", "[invalid bearer token, token has expired]");
    auto r = auth.Authenticate({"old", ""});
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(r.status().message().find("expired") != absl::string_view::npos);
  }
  SECTION("wrong audience") {
    answer = Review(true, {"https://kubernetes.default.svc"}, "system:serviceaccount:shop:orders");
    auto r = auth.Authenticate({"t", ""});
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(r.status().message().find("audience") != absl::string_view::npos);
    answer = Review(true, {}, "system:serviceaccount:shop:orders");
    CHECK(auth.Authenticate({"t", ""}).status().code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("a user that is not a service account") {
    answer = Review(true, {"weft-ca"}, "alice@example.com");
    CHECK(auth.Authenticate({"t", ""}).status().code() == absl::StatusCode::kUnauthenticated);
    answer = Review(true, {"weft-ca"}, "system:serviceaccount:shop");
    CHECK(auth.Authenticate({"t", ""}).status().code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("the API server is unreachable or answers nonsense") {
    CHECK(auth.Authenticate({"t", ""}).status().code() == absl::StatusCode::kUnavailable);
    answer = json{{"kind", "Status"}};
    CHECK(auth.Authenticate({"t", ""}).status().code() == absl::StatusCode::kInternal);
  }
  SECTION("no token: not asked") {
    CHECK_FALSE(Expect(auth, {"", ""}).has_value());
    CHECK(sent.empty());
  }
  CHECK(TokenReviewAuthenticator::ParseResponse("not json", "cluster.local").status().code() ==
        absl::StatusCode::kInternal);
}

class FixedTrust final : public TrustSource {
 public:
  explicit FixedTrust(const SigningAuthority& a) {
    auto v = std::make_shared<CaView>();
    v->roots.push_back(Share(a.root.get()));
    v->store = MakeTrustStore(v->roots).value();
    v->intermediates.push_back(Share(a.certificate.get()));
    view_ = v;
  }
  CaViewConstSharedPtr Current() const override { return view_; }

 private:
  CaViewConstSharedPtr view_;
};

TEST_CASE("mesh certificate: an unexpired leaf from our CA proves its SPIFFE ID", "[ca][auth]") {
  common::FakeClock clock;
  auto authority = NewAuthority(clock.WallNow());
  FixedTrust trust(*authority);
  MeshCertAuthenticator auth(trust, "cluster.local", clock);
  const SpiffeId orders{"cluster.local", "shop", "orders"};
  auto leaf = CsrSigner()
                  .SignCsr(CsrFor(orders.ToString()), orders, seconds(3600), *authority, clock.WallNow())
                  .value();

  CHECK_FALSE(Expect(auth, {"", ""}).has_value());
  auto id = Expect(auth, {"", leaf.chain_pem[0]});
  REQUIRE(id.has_value());
  CHECK(*id == orders);

  SECTION("expired") {
    clock.Advance(std::chrono::hours(2));
    CHECK(auth.Authenticate({"", leaf.chain_pem[0]}).status().code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("from another CA") {
    auto other = NewAuthority(clock.WallNow());
    auto foreign = CsrSigner().SignCsr(CsrFor(orders.ToString()), orders, seconds(3600), *other, clock.WallNow());
    CHECK(auth.Authenticate({"", foreign->chain_pem[0] + foreign->chain_pem[1]}).status().code() ==
          absl::StatusCode::kUnauthenticated);
  }
  SECTION("our serving certificate has no SPIFFE ID") {
    EvpPkeyPtr key = NewKey();
    auto serving = CsrSigner().SignServing(key.get(), {"localhost"}, seconds(3600), *authority, clock.WallNow());
    CHECK(auth.Authenticate({"", serving->chain_pem[0]}).status().code() == absl::StatusCode::kUnauthenticated);
  }
  SECTION("garbage") {
    CHECK(auth.Authenticate({"", "-----BEGIN CERTIFICATE-----\nxx\n"}).status().code() ==
          absl::StatusCode::kUnauthenticated);
  }
}

}  // namespace
}  // namespace weft::ca
