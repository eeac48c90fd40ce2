// When weft-proxy renews its certificate (issue 7): at half of the lifetime
// that remained when it was obtained, so that the CA's backdated notBefore
// does not make a short-lived certificate "due" the moment it arrives.
#include <catch2/catch.hpp>
#include <chrono>

#include "proxy/workload_certificate.h"

namespace weft::proxy {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TEST_CASE("renewal at half of the remaining lifetime, not of the backdated one", "[proxy][cert]") {
  const ca::WallTime now = std::chrono::floor<seconds>(std::chrono::system_clock::now());
  WorkloadIdentity id;
  // --cert-ttl=1m with the CA's 5-minute backdate.
  id.not_before = now - minutes(5);
  id.not_after = now + minutes(1);
  id.obtained = now;
  CHECK(RenewalTime(id) == now + seconds(30));
  // A 24 h certificate: 12 h after it was obtained.
  id.not_after = now + std::chrono::hours(24);
  CHECK(RenewalTime(id) == now + std::chrono::hours(12));
  // Not yet valid when obtained (a clock ahead of ours): half of its own span.
  id.not_before = now + minutes(2);
  id.not_after = now + minutes(12);
  CHECK(RenewalTime(id) == now + minutes(7));
  // Already expired when obtained: renew now.
  id.not_before = now - minutes(10);
  id.not_after = now - minutes(1);
  CHECK(RenewalTime(id) == now);
}

}  // namespace
}  // namespace weft::proxy
