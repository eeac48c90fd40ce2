#include "common/runtime.h"

#include "absl/synchronization/mutex.h"

namespace weft::common {

void DisableMutexDeadlockDetection() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace weft::common
