// The validated policies of one MeshSnapshot. Validation of HTTPRoute and
// the weft.io kinds into typed policies is the policy API work (issue 6);
// until then the set is empty and the compiler emits default routing.
#pragma once

#include <cstdint>
#include <memory>

namespace weft::policy {

struct PolicySet {
  uint64_t snapshot_version = 0;
};

using PolicySetConstSharedPtr = std::shared_ptr<const PolicySet>;

}  // namespace weft::policy
