// Interned, immutable sets of resource names. Thousands of proxies subscribe
// to the same names (every Envoy asks for every cluster's endpoints); the
// streams share one copy per distinct set instead of holding their own.
#pragma once

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"

namespace weft::server {

// A set of names kept sorted in one array. A std::set's node per name (about
// 80 bytes with the string) made every walk a pointer chase: a delta
// subscription to 1,000 names was merged, compared and interned by walking
// trees, once per proxy per type.
class NameSet {
 public:
  using const_iterator = std::vector<std::string>::const_iterator;
  using value_type = std::string;

  NameSet() = default;
  NameSet(std::initializer_list<std::string_view> names) : NameSet(names.begin(), names.end()) {}
  // Any names, in any order, duplicates allowed.
  template <typename It>
  NameSet(It first, It last) {
    for (; first != last; ++first) names_.emplace_back(*first);
    std::sort(names_.begin(), names_.end());
    names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
  }
  // Names already strictly increasing.
  static NameSet FromSorted(const std::vector<std::string_view>& sorted) {
    NameSet set;
    set.names_.assign(sorted.begin(), sorted.end());
    return set;
  }

  const_iterator begin() const { return names_.begin(); }
  const_iterator end() const { return names_.end(); }
  size_t size() const { return names_.size(); }
  bool empty() const { return names_.empty(); }
  size_t count(std::string_view name) const {
    return std::binary_search(names_.begin(), names_.end(), name, std::less<>()) ? 1 : 0;
  }
  bool operator==(const NameSet& other) const { return names_ == other.names_; }

 private:
  std::vector<std::string> names_;
};

using NameSetConstSharedPtr = std::shared_ptr<const NameSet>;

// The shared copy of `names` (thread-safe).
NameSetConstSharedPtr InternNames(NameSet names);
// The shared set of exactly `sorted` (strictly increasing names); when an
// equal set is already interned it is returned without allocating.
NameSetConstSharedPtr InternSortedNames(const std::vector<std::string_view>& sorted);
// The names of a request, sorted and without duplicates (views into it).
std::vector<std::string_view> SortedUniqueNames(const google::protobuf::RepeatedPtrField<std::string>& names);
// The empty set.
NameSetConstSharedPtr EmptyNames();
// True when `current` holds exactly the names in `requested` (duplicates
// allowed), without allocating.
bool SameNames(const NameSet& current, const google::protobuf::RepeatedPtrField<std::string>& requested);

}  // namespace weft::server
