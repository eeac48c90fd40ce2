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

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "policy/proxy_resources.h"
#include "server/name_set.h"

namespace weft::server {

// Order-independent digest of a set of resources: the sum of a stable hash
// of each (name, content hash). Adding or removing one resource updates it
// in O(1), and equal sets have equal digests.
uint64_t ResourceDigest(const std::string& name, const std::string& hash);
std::string DigestVersion(const std::string& type_url, uint64_t digest);

// The names that differ between two sets of resources of one type.
struct TypeDiff {
  std::vector<std::string> changed;  // added, or whose content changed
  std::vector<std::string> removed;
};
using TypeDiffConstSharedPtr = std::shared_ptr<const TypeDiff>;

struct TypeResources {
  uint64_t id = 0;           // unique per distinct content of one lineage
  uint64_t previous_id = 0;  // the TypeResources this one was derived from (0: none)
  policy::ResourcesByName resources;  // by name
  uint64_t digest = 0;       // ResourceDigest summed over all resources
  // Versus previous_id (empty when there is none).
  TypeDiffConstSharedPtr change = std::make_shared<TypeDiff>();

  const policy::Resource* Find(std::string_view name) const {
    auto it = resources.find(name);
    return it == resources.end() ? nullptr : &it->second;
  }

  // What changed from `older` (any set of the same type) to this one. The
  // predecessor's is recorded at creation; any other pair is computed once,
  // by one merge of the two name-ordered maps, and remembered, so that the
  // thousands of streams that lag by the same versions share the work.
  TypeDiffConstSharedPtr DiffFrom(const TypeResources& older) const;

  // The ResourceDigest sum and the count of the resources that `names`
  // selects, computed once per distinct (interned) name set.
  std::pair<uint64_t, size_t> SelectedDigest(const NameSetConstSharedPtr& names) const;

  // Every resource pre-encoded as a field of DiscoveryResponse (SotW) or of
  // DeltaDiscoveryResponse (delta), in name order, with each resource's
  // (offset, length) in the blob (keys view the names in `resources`). Each
  // variant is built once, on first use: a mesh whose proxies all speak one
  // variant never holds the other.
  struct Encoding {
    std::string blob;
    absl::flat_hash_map<std::string_view, std::pair<size_t, size_t>> spans;
  };
  const Encoding& Encoded(bool delta) const;

  // The resources in name order as one array, built once on first use:
  // walking it costs a fraction of walking the map's nodes, and every new
  // stream walks each type it subscribes to in full.
  const std::vector<const policy::Resource*>& Ordered() const;
  // Calls fn(const policy::Resource&) for each resource `names` names, in
  // name order: one merge of the two name-ordered sequences.
  template <typename Fn>
  void ForEachNamed(const NameSet& names, Fn fn) const {
    const std::vector<const policy::Resource*>& ordered = Ordered();
    auto n = names.begin();
    auto r = ordered.begin();
    while (n != names.end() && r != ordered.end()) {
      const int c = n->compare((*r)->name);
      if (c == 0) fn(**r);
      if (c <= 0) ++n;
      if (c >= 0) ++r;
    }
  }

 private:
  mutable std::once_flag ordered_once_;
  mutable std::vector<const policy::Resource*> ordered_;
  mutable std::once_flag encode_once_[2];  // [0] SotW, [1] delta
  mutable Encoding encoding_[2];
  // Memos of DiffFrom (by the older set's id) and SelectedDigest, the most
  // recent few.
  mutable absl::Mutex memo_mu_;
  mutable std::vector<std::pair<uint64_t, TypeDiffConstSharedPtr>> diffs_ ABSL_GUARDED_BY(memo_mu_);
  mutable std::vector<std::pair<std::weak_ptr<const NameSet>, std::pair<uint64_t, size_t>>> selections_
      ABSL_GUARDED_BY(memo_mu_);
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

// `previous` with some of its resources replaced (an incremental compile):
// a replacement whose name `previous` does not hold is ignored, and types
// without a changed resource keep their TypeResources. O(changed types ×
// their size) for the copies, O(replacements) for digests and changes.
ProxySnapshotConstSharedPtr PatchProxySnapshot(const ProxySnapshot& previous, policy::ResourcesByType replacements,
                                               uint64_t mesh_version, std::chrono::steady_clock::time_point created);

}  // namespace weft::server
