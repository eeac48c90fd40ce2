// The shop demo (issue 8) run as a test: examples/shop/run.sh starts weftd,
// eight shop services and a shopper, each behind a real weft-proxy, on
// 127.0.11.x (the README demo uses 127.0.10.x), lets the shopper buy for 14
// seconds, and writes what the customer saw as JSON. The assertions are
// what the demo claims: a 90/10 canary, retries that hide the flaky
// inventory instance, a rate limit that the flash sale hits, the broken
// payments instance ejected, payments refused to anyone but orders, and
// plaintext refused under STRICT mTLS.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {
namespace {

using nlohmann::json;

int Count(const json& j, const std::string& a, const std::string& b = "") {
  if (!j.contains(a)) return 0;
  const json& x = b.empty() ? j[a] : (j[a].contains(b) ? j[a][b] : json(0));
  return x.is_number() ? x.get<int>() : 0;
}

TEST_CASE("the shop demo shows every policy at work", "[e2e][shop]") {
  const std::string dir = MakeTempDir("weft-e2e-shop-");
  const std::string summary = dir + "/summary.json";
  const std::string bin = BinaryPath("weftd").substr(0, BinaryPath("weftd").rfind("/server/"));
  Subprocess run({"/bin/bash", std::string(WEFT_SOURCE_DIR) + "/examples/shop/run.sh", "--seconds=14",
                  "--summary=" + summary, "--bin=" + bin, "--keep=" + dir + "/run"},
                 {{"WEFT_SHOP_NET", "127.0.11"}}, dir + "/run.log");
  REQUIRE(run.Start().ok());
  REQUIRE(run.Wait(absl::Seconds(150)));
  const std::string out = run.Log();
  INFO(out);
  REQUIRE(run.ExitCode() == 0);
  CHECK(absl::StrContains(out, "the shop is open"));
  const json s = json::parse(ReadFile(summary));
  INFO(s.dump(2));

  const int requests = s["requests"].get<int>();
  CHECK(requests >= 14 * 20 + 40 - 20);  // paced at 20/s plus the flash sale
  // The canary: about 10 % of orders go to v2 (binomial, n >= 300: 3 % to 20 %).
  const int v1 = Count(s["where"], "orders", "orders-v1");
  const int v2 = Count(s["where"], "orders", "orders-v2");
  CHECK(v1 + v2 >= requests - 5);
  CHECK(v2 >= (v1 + v2) * 3 / 100);
  CHECK(v2 <= (v1 + v2) * 20 / 100);
  // Retries: inventory-1 fails every third call, and no customer sees it.
  CHECK(Count(s["where"], "inventory", "inventory-1") > 0);
  CHECK(Count(s, "failed_steps", "inventory 503") == 0);
  // The rate limit: the flash sale is more than 15/s per instance.
  CHECK(Count(s, "failed_steps", "inventory 429") > 0);
  // Outlier ejection: payments-1 fails every call; after three in a row it is
  // ejected for 30 s, so it sees only the first few.
  CHECK(Count(s["where"], "payments", "payments-0") > 100);
  CHECK(Count(s["where"], "payments", "payments-1") <= 10);
  // Only orders may call payments.
  CHECK(Count(s, "direct_payments", "403") == 14);
  CHECK(s["direct_payments"].size() == 1);
  // Most purchases go through.
  CHECK(Count(s, "codes", "200") >= requests * 3 / 4);
  // STRICT mTLS: a plaintext request to a sidecar is refused.
  CHECK(absl::StrContains(out, "a plaintext request to payments-0's sidecar (STRICT mTLS): refused"));
}

}  // namespace
}  // namespace weft::e2e
