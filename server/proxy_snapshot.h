// One proxy's compiled configuration as held by the SnapshotCache: the
// compiler's resources plus the mesh version they were built from and when.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "policy/proxy_resources.h"

namespace weft::server {

struct ProxySnapshot {
  uint64_t mesh_version = 0;
  std::chrono::steady_clock::time_point created{};
  policy::ResourcesByType resources;
};

using ProxySnapshotConstSharedPtr = std::shared_ptr<const ProxySnapshot>;

}  // namespace weft::server
