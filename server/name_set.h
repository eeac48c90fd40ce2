// Interned, immutable sets of resource names. Thousands of proxies subscribe
// to the same names (every Envoy asks for every cluster's endpoints); the
// streams share one copy per distinct set instead of holding their own.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"

namespace weft::server {

using NameSet = std::set<std::string, std::less<>>;
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
