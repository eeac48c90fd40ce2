#include "common/periodic_task.h"

namespace weft::common {

PeriodicTask::PeriodicTask(absl::Duration interval, std::function<void()> run) {
  thread_ = std::thread([this, interval, run = std::move(run)] {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) {
      mu_.Unlock();
      run();
      mu_.Lock();
    }
  });
}

PeriodicTask::~PeriodicTask() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

}  // namespace weft::common
