#include "common/heap_trimmer.h"

#include <malloc.h>

#include <chrono>

namespace weft::common {

HeapTrimmer::HeapTrimmer(absl::Duration interval, MetricsRegistry* metrics) {
  if (metrics != nullptr) {
    trims_ = &metrics->GetCounter("weft_process_heap_trims_total",
                                  "Times freed heap memory was handed back to the kernel (malloc_trim).");
    seconds_ = &metrics->GetCounter("weft_process_heap_trim_seconds_total", "Time spent in malloc_trim.");
  }
  task_.emplace(interval, [this] { TrimNow(); });
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

}  // namespace weft::common
