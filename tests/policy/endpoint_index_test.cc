// The endpoint index carried over an endpoint change (EndpointIndex::Updated,
// through CarryOverPolicies) must be the index a fresh build over the new
// snapshot gives, for every kind of change: labels changed, objects added
// and removed, slices moved to another service, addresses moved.
#include "policy/endpoints.h"

#include <catch2/catch.hpp>

#include <iterator>
#include <random>
#include <string>

#include "discovery/mesh_snapshot.h"
#include "policy/incremental.h"
#include "policy/policy_set.h"

namespace weft::policy {
namespace {

using discovery::MeshSnapshot;

const char* const kNamespaces[] = {"a", "b"};
// More services than SharedResources keeps apart before merging (16).
const char* const kApps[] = {"x", "y", "z", "q", "r", "s", "t", "u", "v", "w", "m", "n"};
const char* const kVersions[] = {"v1", "v2"};

template <typename T>
const char* Pick(std::mt19937& rng, const T& options) {
  return options[rng() % std::size(options)];
}

std::map<std::string, std::string> RandomLabels(std::mt19937& rng) {
  std::map<std::string, std::string> labels;
  if (rng() % 5 != 0) labels["app"] = Pick(rng, kApps);
  if (rng() % 2 == 0) labels["version"] = Pick(rng, kVersions);
  return labels;
}

// Removes the object at `key` (one time in four; null), or creates or
// updates it: named, with new labels half of the time.
template <typename T>
T* RemoveOrUpdate(std::mt19937& rng, std::map<std::string, T>& objects, const std::string& ns,
                  const std::string& name) {
  const std::string key = discovery::ObjectKey(ns, name);
  if (rng() % 4 == 0) {
    objects.erase(key);
    return nullptr;
  }
  T& object = objects[key];
  object.meta.name = name;
  object.meta.namespace_ = ns;
  if (rng() % 2 == 0) object.meta.labels = RandomLabels(rng);  // else: only where it runs changes
  return &object;
}

// Adds, removes or changes one Workload, Pod or EndpointSlice.
void MutateOne(std::mt19937& rng, MeshSnapshot& mesh) {
  const std::string ns = Pick(rng, kNamespaces);
  const std::string name = "o" + std::to_string(rng() % 12);
  const std::string address = "10.0.0." + std::to_string(rng() % 4);
  const uint32_t port = 8000 + rng() % 3;
  switch (rng() % 3) {
    case 0:
      if (auto* w = RemoveOrUpdate(rng, mesh.workloads, ns, name)) {
        w->address = address;
        w->ports["http"] = port;
      }
      break;
    case 1:
      if (auto* pod = RemoveOrUpdate(rng, mesh.pods, ns, name)) {
        pod->pod_ip = address;
        pod->ready = true;
      }
      break;
    default:
      if (auto* slice = RemoveOrUpdate(rng, mesh.endpoint_slices, ns, name)) {
        if (slice->service_name.empty() || rng() % 2 == 0) slice->service_name = Pick(rng, kApps);
        slice->ports = {{"http", port, "TCP", ""}};
        discovery::Endpoint ep;
        ep.addresses = {address};
        slice->endpoints = {ep};
      }
      break;
  }
}

// What a compile asks the index, answered by `index` over `mesh`.
std::vector<std::string> Answers(const EndpointIndex& index, const MeshSnapshot& mesh) {
  std::vector<std::string> out;
  for (const char* ns : kNamespaces) {
    for (const char* app : kApps) {
      for (const char* version : {"", "v1", "v2"}) {
        std::map<std::string, std::string> selector = {{"app", app}};
        if (*version != '\0') selector["version"] = version;
        std::string line = std::string(ns) + " " + app + " " + version + ":";
        for (const auto* w : index.SelectWorkloads(mesh, ns, selector))
          line += " w:" + w->meta.name + "@" + w->address;
        for (const auto* p : index.SelectPods(mesh, ns, selector))
          line += " p:" + p->meta.name + "@" + p->pod_ip;
        out.push_back(line);
      }
      std::string line = std::string(ns) + " slices of " + app + ":";
      for (const auto* s : index.SlicesOf(mesh, ns, app)) line += " " + s->meta.name;
      out.push_back(line);
    }
  }
  return out;
}

TEST_CASE("EndpointIndex carried over endpoint changes equals one built afresh", "[endpoints]") {
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto mesh = std::make_shared<MeshSnapshot>();
  mesh->version = 1;
  for (const char* ns : kNamespaces) {
    for (const char* app : kApps) {
      discovery::Service& service = mesh->services[discovery::ObjectKey(ns, app)];
      service.meta.name = app;
      service.meta.namespace_ = ns;
      service.selector = {{"app", app}};
      service.ports = {discovery::ServicePort{"http", 8080, 0, "", "TCP", ""}};
    }
  }
  for (int i = 0; i < 40; ++i) MutateOne(rng, *mesh);
  CompilerOptions options;
  PolicySetConstSharedPtr policies = ValidatePolicies(*mesh, options);
  REQUIRE(policies->endpoint_index != nullptr);

  int shared = 0;
  int merged = 0;
  for (int step = 0; step < 300; ++step) {
    auto next = std::make_shared<MeshSnapshot>(*mesh);
    next->version = mesh->version + 1;
    const int changes = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < changes; ++i) MutateOne(rng, *next);
    auto change = discovery::EndpointsOnlyChange(*mesh, *next);
    REQUIRE(change.has_value());
    const EndpointImpact impact = ImpactOf(*mesh, *next, *change);
    PolicySetConstSharedPtr carried = CarryOverPolicies(*policies, *next, impact, options);
    INFO("step " << step);
    const EndpointIndex fresh(*next);
    REQUIRE(carried->endpoint_index != nullptr);
    CHECK(*carried->endpoint_index == fresh);
    CHECK(Answers(*carried->endpoint_index, *next) == Answers(fresh, *next));
    // The shared sidecar clusters carried over (rebuilt for the impacted
    // services, merged now and then) are those of a whole validation.
    PolicySetConstSharedPtr whole = ValidatePolicies(*next, options);
    REQUIRE(whole->shared != nullptr);
    REQUIRE(whole->shared->base != nullptr);
    for (const auto& [name, pair] : *whole->shared->base) {
      const SharedResources::ClusterPair* got = carried->shared->Find(name);
      REQUIRE(got != nullptr);
      CHECK(got->cluster.hash == pair->cluster.hash);
      CHECK(got->endpoints.hash == pair->endpoints.hash);
    }
    merged += carried->shared->recent.empty() ? 1 : 0;
    if (impact.index_delta.empty()) {
      // Nothing the index holds changed: it is shared, not copied.
      CHECK(carried->endpoint_index == policies->endpoint_index);
      ++shared;
    }
    mesh = next;
    policies = carried;
  }
  CHECK(shared > 0);  // address-only changes happened
  CHECK(merged > 0);  // and enough of them for SharedResources to merge
}

}  // namespace
}  // namespace weft::policy
