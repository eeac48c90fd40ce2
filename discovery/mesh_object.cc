#include "discovery/mesh_object.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace weft::discovery {
namespace {

// Index in MeshSnapshot::policies: "Kind/namespace/name".
std::string PolicyKey(const std::string& kind, const std::string& ns, const std::string& name) {
  return absl::StrCat(kind, "/", ObjectKey(ns, name));
}

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace

std::string KindOf(const MeshObject& object) {
  return std::visit(Overloaded{
                        [](const Service&) -> std::string { return "Service"; },
                        [](const EndpointSlice&) -> std::string { return "EndpointSlice"; },
                        [](const Workload&) -> std::string { return "Workload"; },
                        [](const Pod&) -> std::string { return "Pod"; },
                        [](const Namespace&) -> std::string { return "Namespace"; },
                        [](const PolicyDocument& p) -> std::string { return p.kind; },
                    },
                    object);
}

const ObjectMeta& MetaOf(const MeshObject& object) {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o.meta; }, object);
}

std::string MeshObjectKey(const std::string& kind, const std::string& ns, const std::string& name) {
  return PolicyKey(kind, ns, name);
}

std::string MeshObjectKey(const MeshObject& object) {
  const ObjectMeta& meta = MetaOf(object);
  return MeshObjectKey(KindOf(object), meta.namespace_, meta.name);
}

bool SnapshotContains(const MeshSnapshot& snapshot, const MeshObject& object) {
  const ObjectMeta& meta = MetaOf(object);
  const std::string key = ObjectKey(meta.namespace_, meta.name);
  return std::visit(Overloaded{
                        [&](const Service&) { return snapshot.services.count(key) > 0; },
                        [&](const EndpointSlice&) { return snapshot.endpoint_slices.count(key) > 0; },
                        [&](const Workload&) { return snapshot.workloads.count(key) > 0; },
                        [&](const Pod&) { return snapshot.pods.count(key) > 0; },
                        [&](const Namespace&) { return snapshot.namespaces.count(key) > 0; },
                        [&](const PolicyDocument& p) {
                          return snapshot.policies.count(PolicyKey(p.kind, meta.namespace_, meta.name)) > 0;
                        },
                    },
                    object);
}

namespace {

template <typename T>
bool Holds(const std::map<std::string, T>& objects, const std::string& key, const T& object) {
  auto it = objects.find(key);
  return it != objects.end() && SameObject(it->second, object);
}

}  // namespace

bool SnapshotHolds(const MeshSnapshot& snapshot, const MeshObject& object) {
  const ObjectMeta& meta = MetaOf(object);
  const std::string key = ObjectKey(meta.namespace_, meta.name);
  return std::visit(Overloaded{
                        [&](const Service& o) { return Holds(snapshot.services, key, o); },
                        [&](const EndpointSlice& o) { return Holds(snapshot.endpoint_slices, key, o); },
                        [&](const Workload& o) { return Holds(snapshot.workloads, key, o); },
                        [&](const Pod& o) { return Holds(snapshot.pods, key, o); },
                        [&](const Namespace& o) { return Holds(snapshot.namespaces, key, o); },
                        [&](const PolicyDocument& o) {
                          return Holds(snapshot.policies, PolicyKey(o.kind, meta.namespace_, meta.name), o);
                        },
                    },
                    object);
}

void AddToSnapshot(MeshObject object, MeshSnapshot& snapshot) {
  std::visit(Overloaded{
                 [&](Service& o) {
                   std::string key = ObjectKey(o.meta.namespace_, o.meta.name);
                   snapshot.services.insert_or_assign(std::move(key), std::move(o));
                 },
                 [&](EndpointSlice& o) {
                   std::string key = ObjectKey(o.meta.namespace_, o.meta.name);
                   snapshot.endpoint_slices.insert_or_assign(std::move(key), std::move(o));
                 },
                 [&](Workload& o) {
                   std::string key = ObjectKey(o.meta.namespace_, o.meta.name);
                   snapshot.workloads.insert_or_assign(std::move(key), std::move(o));
                 },
                 [&](Pod& o) {
                   std::string key = ObjectKey(o.meta.namespace_, o.meta.name);
                   snapshot.pods.insert_or_assign(std::move(key), std::move(o));
                 },
                 [&](Namespace& o) {
                   std::string key = ObjectKey(o.meta.namespace_, o.meta.name);
                   snapshot.namespaces.insert_or_assign(std::move(key), std::move(o));
                 },
                 [&](PolicyDocument& o) {
                   std::string key = PolicyKey(o.kind, o.meta.namespace_, o.meta.name);
                   snapshot.policies.insert_or_assign(std::move(key), std::move(o));
                 },
             },
             object);
}

void RemoveFromSnapshot(const std::string& kind, const std::string& ns, const std::string& name,
                        MeshSnapshot& snapshot) {
  const std::string key = ObjectKey(ns, name);
  if (kind == "Service") {
    snapshot.services.erase(key);
  } else if (kind == "EndpointSlice") {
    snapshot.endpoint_slices.erase(key);
  } else if (kind == "Workload") {
    snapshot.workloads.erase(key);
  } else if (kind == "Pod") {
    snapshot.pods.erase(key);
  } else if (kind == "Namespace") {
    snapshot.namespaces.erase(key);
  } else {
    snapshot.policies.erase(PolicyKey(kind, ns, name));
  }
}

}  // namespace weft::discovery
