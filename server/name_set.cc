#include "server/name_set.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "common/hash.h"

namespace weft::server {
namespace {

struct Pool {
  std::mutex mu;
  std::unordered_multimap<uint64_t, std::weak_ptr<const NameSet>> sets;
  size_t inserts_since_sweep = 0;
};

Pool& GetPool() {
  static Pool* pool = new Pool();
  return *pool;
}

template <typename Names>
uint64_t HashNames(const Names& names) {
  common::StableHasher h;
  for (const auto& n : names) h.Add(n);
  return h.Value();
}

// `names`, non-empty, whose HashNames is `key`.
NameSetConstSharedPtr InternHashed(uint64_t key, NameSet names) {
  Pool& pool = GetPool();
  std::lock_guard<std::mutex> lock(pool.mu);
  auto range = pool.sets.equal_range(key);
  for (auto it = range.first; it != range.second; ++it) {
    if (auto existing = it->second.lock(); existing && *existing == names) return existing;
  }
  auto fresh = std::make_shared<const NameSet>(std::move(names));
  pool.sets.emplace(key, fresh);
  if (++pool.inserts_since_sweep > 1024) {  // drop entries whose sets are gone
    pool.inserts_since_sweep = 0;
    for (auto it = pool.sets.begin(); it != pool.sets.end();) {
      it = it->second.expired() ? pool.sets.erase(it) : std::next(it);
    }
  }
  return fresh;
}

}  // namespace

NameSetConstSharedPtr EmptyNames() {
  static const NameSetConstSharedPtr* empty = new NameSetConstSharedPtr(std::make_shared<NameSet>());
  return *empty;
}

NameSetConstSharedPtr InternNames(NameSet names) {
  if (names.empty()) return EmptyNames();
  const uint64_t key = HashNames(names);
  return InternHashed(key, std::move(names));
}

NameSetConstSharedPtr InternSortedNames(const std::vector<std::string_view>& sorted) {
  if (sorted.empty()) return EmptyNames();
  const uint64_t key = HashNames(sorted);
  {
    Pool& pool = GetPool();
    std::lock_guard<std::mutex> lock(pool.mu);
    auto range = pool.sets.equal_range(key);
    for (auto it = range.first; it != range.second; ++it) {
      auto existing = it->second.lock();
      if (existing && existing->size() == sorted.size() &&
          std::equal(existing->begin(), existing->end(), sorted.begin())) {
        return existing;
      }
    }
  }
  // The same names in the same order: the same key.
  return InternHashed(key, NameSet::FromSorted(sorted));
}

std::vector<std::string_view> SortedUniqueNames(
    const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::vector<std::string_view> out(names.begin(), names.end());
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool SameNames(const NameSet& current, const google::protobuf::RepeatedPtrField<std::string>& requested) {
  if (static_cast<size_t>(requested.size()) < current.size()) return false;
  for (const auto& name : requested) {
    if (current.count(name) == 0) return false;
  }
  // Every requested name is in `current`. With as many requested names as
  // `current` has, they are equal unless some name repeats; clients send
  // sorted lists, so check that first and count distinct names otherwise.
  if (static_cast<size_t>(requested.size()) == current.size()) {
    bool strictly_sorted = true;
    for (int i = 1; i < requested.size() && strictly_sorted; ++i) {
      strictly_sorted = requested[i - 1] < requested[i];
    }
    if (strictly_sorted) return true;
  }
  NameSet distinct(requested.begin(), requested.end());
  return distinct.size() == current.size();
}

}  // namespace weft::server
