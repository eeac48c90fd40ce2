// ApplyKubeVerdict: how Weft's verdicts merge into an object's status
// (metav1.Conditions by type, Gateway API status.parents by controller),
// and that applying the same verdict again changes nothing, which is what
// keeps KubeRegistry's status writes from storming.
#include "discovery/kube_status_writer.h"

#include <catch2/catch.hpp>
#include <chrono>

namespace weft::discovery {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

const system_clock::time_point kT1 = system_clock::time_point(std::chrono::seconds(1800000000));
const system_clock::time_point kT2 = kT1 + std::chrono::hours(1);

KubeObjectVerdict Accepted(bool ok, const std::string& message, int64_t generation) {
  KubeObjectVerdict v;
  v.conditions.push_back(KubeCondition{"Accepted", ok, ok ? "Accepted" : "Invalid", message, generation});
  return v;
}

TEST_CASE("conditions merge by type; lastTransitionTime moves only with the status", "[kube][status]") {
  json object = {
      {"metadata", {{"name", "tp"}}},
      {"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "Other"}}}}}}};
  REQUIRE(ApplyKubeVerdict(Accepted(false, "spec.timeout: not a duration", 1), kT1, object));
  auto& conditions = object["status"]["conditions"];
  REQUIRE(conditions.size() == 2);
  CHECK(conditions[0]["type"] == "Ready");  // someone else's, kept
  CHECK(conditions[1]["status"] == "False");
  CHECK(conditions[1]["message"] == "spec.timeout: not a duration");
  CHECK(conditions[1]["observedGeneration"] == 1);
  CHECK(conditions[1]["lastTransitionTime"] == "2027-01-15T08:00:00Z");

  // The same verdict later: nothing to write.
  CHECK_FALSE(ApplyKubeVerdict(Accepted(false, "spec.timeout: not a duration", 1), kT2, object));
  // Another message, same status: written, the transition time stays.
  REQUIRE(ApplyKubeVerdict(Accepted(false, "spec.timeout: negative", 2), kT2, object));
  CHECK(object["status"]["conditions"][1]["lastTransitionTime"] == "2027-01-15T08:00:00Z");
  CHECK(object["status"]["conditions"][1]["observedGeneration"] == 2);
  // Status flips: the transition time moves.
  REQUIRE(ApplyKubeVerdict(Accepted(true, "", 3), kT2, object));
  CHECK(object["status"]["conditions"][1]["lastTransitionTime"] == "2027-01-15T09:00:00Z");
  CHECK(object["status"]["conditions"][1]["reason"] == "Accepted");
}

KubeRouteParentStatus Parent(const std::string& name, bool accepted, bool resolved) {
  KubeRouteParentStatus p;
  p.parent_ref = {{"kind", "Service"}, {"name", name}};
  p.conditions = {
      KubeCondition{"Accepted", accepted, accepted ? "Accepted" : "NoMatchingParent", "", 1},
      KubeCondition{"ResolvedRefs", resolved, resolved ? "ResolvedRefs" : "BackendNotFound", "", 1}};
  return p;
}

TEST_CASE("route parents: Weft's entries are replaced in place, other controllers' are kept",
          "[kube][status]") {
  json other = {{"parentRef", {{"kind", "Gateway"}, {"name", "gw"}}},
                {"controllerName", "example.com/gateway"},
                {"conditions", json::array()}};
  json route = {{"status", {{"parents", json::array({other})}}}};
  KubeObjectVerdict v;
  v.route = true;
  v.route_parents = {Parent("a", true, false), Parent("b", false, true)};
  REQUIRE(ApplyKubeVerdict(v, kT1, route));
  auto parents = route["status"]["parents"];
  REQUIRE(parents.size() == 3);
  CHECK(parents[0] == other);
  CHECK(parents[1]["controllerName"] == kWeftControllerName);
  CHECK(parents[1]["parentRef"]["name"] == "a");
  CHECK(parents[1]["conditions"][1]["reason"] == "BackendNotFound");
  CHECK(parents[2]["parentRef"]["name"] == "b");
  CHECK_FALSE(ApplyKubeVerdict(v, kT2, route));

  // Another controller adds its entry after ours: ours stay where they are,
  // so nothing needs writing.
  json other2 = other;
  other2["parentRef"]["name"] = "gw2";
  route["status"]["parents"].push_back(other2);
  CHECK_FALSE(ApplyKubeVerdict(v, kT2, route));

  // Parent b goes away, a's backends resolve: a changes in place (its
  // Accepted keeps its transition time), b's entry is dropped.
  v.route_parents = {Parent("a", true, true)};
  REQUIRE(ApplyKubeVerdict(v, kT2, route));
  parents = route["status"]["parents"];
  REQUIRE(parents.size() == 3);
  CHECK(parents[0] == other);
  CHECK(parents[1]["parentRef"]["name"] == "a");
  CHECK(parents[1]["conditions"][0]["lastTransitionTime"] == "2027-01-15T08:00:00Z");
  CHECK(parents[1]["conditions"][1]["lastTransitionTime"] == "2027-01-15T09:00:00Z");
  CHECK(parents[2] == other2);
}

}  // namespace
}  // namespace weft::discovery
