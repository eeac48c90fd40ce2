#include "common/heap_trimmer.h"

#include <malloc.h>

#include <chrono>

namespace weft::common {

HeapTrimmer::HeapTrimmer(absl::Duration interval, MetricsRegistry* metrics) : interval_(interval) {
  if (metrics != nullptr) {
    trims_ = &metrics->GetCounter("weft_process_heap_trims_total",
                                  "Times freed heap memory was handed back to the kernel (malloc_trim).");
    seconds_ = &metrics->GetCounter("weft_process_heap_trim_seconds_total", "Time spent in malloc_trim.");
  }
  thread_ = std::thread([this] { Run(); });
}

HeapTrimmer::~HeapTrimmer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

bool HeapTrimmer::TrimNow() {
  const auto start = std::chrono::steady_clock::now();
  const bool released = malloc_trim(0) != 0;
  if (seconds_ != nullptr) {
    seconds_->Inc(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (trims_ != nullptr) trims_->Inc();
  return released;
}

void HeapTrimmer::Run() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_)) {
    mu_.Unlock();
    TrimNow();
    mu_.Lock();
  }
}

}  // namespace weft::common
