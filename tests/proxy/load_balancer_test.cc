// Endpoint selection (proxy/load_balancer.h): round robin cycles evenly;
// least request prefers idle endpoints and never starves any.
#include <catch2/catch.hpp>
#include <map>

#include "proxy/load_balancer.h"

namespace weft::proxy {
namespace {

TEST_CASE("round robin cycles over every endpoint evenly", "[proxy][lb]") {
  EndpointPicker picker;
  std::map<size_t, int> count;
  for (int i = 0; i < 300; ++i) count[picker.Pick(LbPolicy::kRoundRobin, {0, 0, 0})]++;
  CHECK(count == std::map<size_t, int>{{0, 100}, {1, 100}, {2, 100}});
  CHECK(picker.Pick(LbPolicy::kRoundRobin, {5}) == 0);
}

TEST_CASE("least request avoids the busy endpoint", "[proxy][lb]") {
  EndpointPicker picker(42);
  std::map<size_t, int> count;
  for (int i = 0; i < 1000; ++i) count[picker.Pick(LbPolicy::kLeastRequest, {10, 0})]++;
  CHECK(count[1] == 1000);  // of two candidates, the less loaded always wins
  count.clear();
  for (int i = 0; i < 3000; ++i) count[picker.Pick(LbPolicy::kLeastRequest, {50, 0, 0})]++;
  CHECK(count[0] == 0);
  CHECK(count[1] > 1200);
  CHECK(count[2] > 1200);
  count.clear();
  for (int i = 0; i < 3000; ++i) count[picker.Pick(LbPolicy::kLeastRequest, {1, 1, 1})]++;
  for (size_t e = 0; e < 3; ++e) CHECK(count[e] > 800);  // equal load: spread
}

}  // namespace
}  // namespace weft::proxy
