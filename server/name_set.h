// Interned, immutable sets of resource names. Thousands of proxies subscribe
// to the same names (every Envoy asks for every cluster's endpoints); the
// streams share one copy per distinct set instead of holding their own.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "google/protobuf/repeated_ptr_field.h"

namespace weft::server {

using NameSet = std::set<std::string>;
using NameSetConstSharedPtr = std::shared_ptr<const NameSet>;

// The shared copy of `names` (thread-safe).
NameSetConstSharedPtr InternNames(NameSet names);
// The empty set.
NameSetConstSharedPtr EmptyNames();
// True when `current` holds exactly the names in `requested` (duplicates
// allowed), without allocating.
bool SameNames(const NameSet& current, const google::protobuf::RepeatedPtrField<std::string>& requested);

}  // namespace weft::server
