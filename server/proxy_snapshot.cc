#include "server/proxy_snapshot.h"

#include <array>
#include <atomic>
#include <charconv>

#include "common/hash.h"
#include "common/wire_format.h"
#include "policy/resource_types.h"

namespace weft::server {
namespace {

std::atomic<uint64_t> next_type_id{1};

const TypeResources& EmptyType() {
  static const TypeResources* empty = new TypeResources();
  return *empty;
}

}  // namespace

uint64_t ResourceDigest(const std::string& name, const std::string& hash) {
  return common::StableHasher().Add(name).Add(hash).Value();
}

std::string DigestVersion(const std::string& type_url, uint64_t digest) {
  // Every stream computes this per type on every push: the hasher state
  // after the type URL is kept for the types Weft pushes.
  static const auto* const prefixes = [] {
    auto* a = new std::array<common::StableHasher, policy::kPushOrder.size()>();
    for (size_t i = 0; i < policy::kPushOrder.size(); ++i) (*a)[i].Add(policy::kPushOrder[i]);
    return a;
  }();
  common::StableHasher hasher;
  size_t i = 0;
  while (i < policy::kPushOrder.size() && policy::kPushOrder[i] != type_url) ++i;
  if (i < policy::kPushOrder.size()) {
    hasher = (*prefixes)[i];
  } else {
    hasher.Add(type_url);
  }
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), digest).ptr;
  return hasher.Add(std::string_view(digits, static_cast<size_t>(end - digits))).Hex();
}

const TypeResources::Encoding& TypeResources::Encoded(bool delta) const {
  const int i = delta ? 1 : 0;
  std::call_once(encode_once_[i], [this, delta, i] {
    Encoding& out = encoding_[i];
    out.spans.reserve(resources.size());
    std::string any;
    std::string delta_resource;
    for (const auto& [name, r] : resources) {
      any.clear();
      r.body->SerializeToString(&any);
      const size_t start = out.blob.size();
      if (!delta) {
        // DiscoveryResponse.resources = 2 (Any)
        common::AppendLengthDelimited(out.blob, 2, any);
      } else {
        // DeltaDiscoveryResponse.resources = 2 (Resource{version = 1, resource = 2, name = 3})
        delta_resource.clear();
        common::AppendLengthDelimited(delta_resource, 1, r.hash);
        common::AppendLengthDelimited(delta_resource, 2, any);
        common::AppendLengthDelimited(delta_resource, 3, name);
        common::AppendLengthDelimited(out.blob, 2, delta_resource);
      }
      out.spans[std::string_view(name)] = {start, out.blob.size() - start};
    }
    out.blob.shrink_to_fit();
  });
  return encoding_[i];
}

namespace {
constexpr size_t kMemoEntries = 4;

// Keeps the newest kMemoEntries entries.
template <typename Entry>
void Remember(std::vector<Entry>& memo, Entry entry) {
  if (memo.size() >= kMemoEntries) memo.erase(memo.begin());
  memo.push_back(std::move(entry));
}
}  // namespace

TypeDiffConstSharedPtr TypeResources::DiffFrom(const TypeResources& older) const {
  if (older.id != 0 && older.id == previous_id) return change;
  {
    absl::MutexLock lock(&memo_mu_);
    for (const auto& [id, diff] : diffs_) {
      if (id == older.id && older.id != 0) return diff;
    }
  }
  auto diff = std::make_shared<TypeDiff>();
  auto a = older.resources.begin();
  auto b = resources.begin();
  while (a != older.resources.end() || b != resources.end()) {
    if (b == resources.end() || (a != older.resources.end() && a->first < b->first)) {
      diff->removed.push_back(a->first);
      ++a;
    } else if (a == older.resources.end() || b->first < a->first) {
      diff->changed.push_back(b->first);
      ++b;
    } else {
      if (a->second.hash != b->second.hash) diff->changed.push_back(b->first);
      ++a;
      ++b;
    }
  }
  if (older.id != 0) {
    absl::MutexLock lock(&memo_mu_);
    Remember(diffs_, std::pair<uint64_t, TypeDiffConstSharedPtr>(older.id, diff));
  }
  return diff;
}

const std::vector<const policy::Resource*>& TypeResources::Ordered() const {
  std::call_once(ordered_once_, [this] {
    ordered_.reserve(resources.size());
    for (const auto& [name, r] : resources) ordered_.push_back(&r);
  });
  return ordered_;
}

std::pair<uint64_t, size_t> TypeResources::SelectedDigest(const NameSetConstSharedPtr& names) const {
  {
    absl::MutexLock lock(&memo_mu_);
    for (const auto& [weak, value] : selections_) {
      if (auto held = weak.lock(); held == names) return value;
    }
  }
  std::pair<uint64_t, size_t> value{0, 0};
  ForEachNamed(*names, [&value](const policy::Resource& r) {
    value.first += ResourceDigest(r.name, r.hash);
    value.second++;
  });
  absl::MutexLock lock(&memo_mu_);
  Remember(selections_, std::pair<std::weak_ptr<const NameSet>, std::pair<uint64_t, size_t>>(names, value));
  return value;
}

const TypeResources& ProxySnapshot::Type(const std::string& type_url) const {
  auto it = types.find(type_url);
  return it == types.end() || !it->second ? EmptyType() : *it->second;
}

TypeResourcesConstSharedPtr ProxySnapshot::TypePtr(const std::string& type_url) const {
  auto it = types.find(type_url);
  return it == types.end() ? nullptr : it->second;
}

ProxySnapshotConstSharedPtr MakeProxySnapshot(policy::ResourcesByType resources, uint64_t mesh_version,
                                              std::chrono::steady_clock::time_point created,
                                              const ProxySnapshot* previous) {
  auto snapshot = std::make_shared<ProxySnapshot>();
  snapshot->mesh_version = mesh_version;
  snapshot->created = created;
  for (auto& [type_url, by_name] : resources) {
    auto type = std::make_shared<TypeResources>();
    type->resources = std::move(by_name);
    for (const auto& [name, r] : type->resources) type->digest += ResourceDigest(name, r.hash);
    TypeResourcesConstSharedPtr before = previous ? previous->TypePtr(type_url) : nullptr;
    if (before && before->digest == type->digest && before->resources.size() == type->resources.size()) {
      snapshot->types[type_url] = before;  // unchanged: share it
      continue;
    }
    type->id = next_type_id++;
    if (before) {
      type->change = type->DiffFrom(*before);
      type->previous_id = before->id;
    }
    snapshot->types[type_url] = std::move(type);
  }
  // Types that vanished entirely become empty sets that say so.
  if (previous) {
    for (const auto& [type_url, before] : previous->types) {
      if (snapshot->types.count(type_url) || !before || before->resources.empty()) continue;
      auto type = std::make_shared<TypeResources>();
      type->id = next_type_id++;
      type->previous_id = before->id;
      auto change = std::make_shared<TypeDiff>();
      for (const auto& [name, r] : before->resources) change->removed.push_back(name);
      type->change = std::move(change);
      snapshot->types[type_url] = std::move(type);
    }
  }
  return snapshot;
}

ProxySnapshotConstSharedPtr PatchProxySnapshot(const ProxySnapshot& previous,
                                               policy::ResourcesByType replacements, uint64_t mesh_version,
                                               std::chrono::steady_clock::time_point created) {
  auto snapshot = std::make_shared<ProxySnapshot>();
  snapshot->mesh_version = mesh_version;
  snapshot->created = created;
  snapshot->types = previous.types;
  for (auto& [type_url, by_name] : replacements) {
    auto it = snapshot->types.find(type_url);
    if (it == snapshot->types.end() || !it->second) continue;
    const TypeResources& before = *it->second;
    auto change = std::make_shared<TypeDiff>();
    uint64_t digest = before.digest;
    for (const auto& [name, r] : by_name) {
      const policy::Resource* held = before.Find(name);
      if (held == nullptr || held->hash == r.hash) continue;
      digest = digest - ResourceDigest(name, held->hash) + ResourceDigest(name, r.hash);
      change->changed.push_back(name);  // in name order: by_name is sorted
    }
    if (change->changed.empty()) continue;  // unchanged: share it
    auto type = std::make_shared<TypeResources>();
    type->resources = before.resources;
    for (const auto& name : change->changed) type->resources[name] = std::move(by_name.find(name)->second);
    type->digest = digest;
    type->id = next_type_id++;
    type->previous_id = before.id;
    type->change = std::move(change);
    it->second = std::move(type);
  }
  return snapshot;
}

}  // namespace weft::server
