// Process-wide settings for Weft's binaries (not for tests).
#pragma once

namespace weft::common {

// Debian's Abseil is built without NDEBUG, so every absl::Mutex acquisition
// runs Abseil's deadlock detector: a process-wide lock-order graph, updated
// under a global lock on each Lock(). That is a debugging aid; weftd and
// weft-proxy turn it off at start (unit tests keep it, and find lock-order
// inversions there).
void DisableMutexDeadlockDetection();

}  // namespace weft::common
