// One proxy's compiled configuration as held by the SnapshotCache, shaped so
// that thousands of streams can share it: per type an immutable, shared
// TypeResources (proxies with the same configuration hold the same
// pointers), a type left unchanged by an update keeps its pointer, and a
// changed type knows what changed since its predecessor, so that a stream
// that has seen the predecessor does work proportional to the change, not
// to the mesh.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "policy/proxy_resources.h"

namespace weft::server {

// Order-independent digest of a set of resources: the sum of a stable hash
// of each (name, content hash). Adding or removing one resource updates it
// in O(1), and equal sets have equal digests.
uint64_t ResourceDigest(const std::string& name, const std::string& hash);
std::string DigestVersion(const std::string& type_url, uint64_t digest);

struct TypeResources {
  uint64_t id = 0;           // unique per distinct content of one lineage
  uint64_t previous_id = 0;  // the TypeResources this one was derived from (0: none)
  std::map<std::string, policy::Resource> resources;  // by name
  uint64_t digest = 0;       // ResourceDigest summed over all resources
  // Versus previous_id: names added or whose content changed, and names removed.
  std::vector<std::string> changed;
  std::vector<std::string> removed;

  const policy::Resource* Find(const std::string& name) const {
    auto it = resources.find(name);
    return it == resources.end() ? nullptr : &it->second;
  }

  // Every resource pre-encoded as a field of DiscoveryResponse (`sotw`) and
  // of DeltaDiscoveryResponse (`delta`), in name order, with each
  // resource's (offset, length) in them. Built once, on first use.
  struct Encoding {
    std::string sotw;
    std::string delta;
    std::map<std::string, std::pair<size_t, size_t>> sotw_spans;
    std::map<std::string, std::pair<size_t, size_t>> delta_spans;
  };
  const Encoding& Encoded() const;

 private:
  mutable std::once_flag encode_once_;
  mutable Encoding encoding_;
};

using TypeResourcesConstSharedPtr = std::shared_ptr<const TypeResources>;

struct ProxySnapshot {
  uint64_t mesh_version = 0;
  // When the first change that this snapshot carries was seen (the start of
  // change->ACK convergence).
  std::chrono::steady_clock::time_point created{};
  std::map<std::string, TypeResourcesConstSharedPtr, std::less<>> types;

  // The resources of a type; never null (an empty set when absent).
  const TypeResources& Type(const std::string& type_url) const;
  TypeResourcesConstSharedPtr TypePtr(const std::string& type_url) const;
};

using ProxySnapshotConstSharedPtr = std::shared_ptr<const ProxySnapshot>;

// Builds a snapshot from compiled resources. Types whose content equals that
// of `previous` reuse its TypeResources; changed ones record the difference.
ProxySnapshotConstSharedPtr MakeProxySnapshot(policy::ResourcesByType resources, uint64_t mesh_version,
                                              std::chrono::steady_clock::time_point created,
                                              const ProxySnapshot* previous);

}  // namespace weft::server
