// A source of MeshSnapshots (file mode or Kubernetes). weftd's wiring calls
// Run() once and receives every new snapshot through the callback; sources
// never call the server. Constructors do no I/O.
#pragma once

#include <functional>

#include "absl/status/status.h"
#include "discovery/mesh_snapshot.h"

namespace weft::discovery {

using SnapshotCallback = std::function<void(MeshSnapshotConstSharedPtr)>;

class Registry {
 public:
  virtual ~Registry() = default;
  // Builds the first snapshot, delivers it through `on_snapshot` before
  // returning (or returns an error, e.g. an unreadable directory), then keeps
  // watching in the background and delivers each changed snapshot.
  virtual absl::Status Run(SnapshotCallback on_snapshot) = 0;
  // Stops watching; no callback runs after Stop() returns.
  virtual void Stop() = 0;
};

}  // namespace weft::discovery
