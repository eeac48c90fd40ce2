// Gives freed heap memory back to the kernel at regular intervals.
//
// glibc's malloc returns memory to the kernel only from the top of a heap;
// pages freed in the middle stay in the process's RSS until it exits. A
// control plane's memory comes and goes in bursts (2,000 proxies connecting
// at once, a push fanned out to all of them), and after each burst tens of
// MB sat free but resident in weftd. The trimmer calls malloc_trim(0) once
// per interval, which hands whole free pages back with MADV_DONTNEED; the
// memory stays mapped and is reused on the next burst. (Go does the same for
// istiod with its background scavenger.)
#pragma once

#include <optional>

#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/periodic_task.h"

namespace weft::common {

class HeapTrimmer {
 public:
  // Exports weft_process_heap_trims_total and
  // weft_process_heap_trim_seconds_total to `metrics` (may be null).
  HeapTrimmer(absl::Duration interval, MetricsRegistry* metrics);
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  // One trim now, on the calling thread. True when malloc_trim released
  // memory.
  bool TrimNow();

 private:
  Counter* trims_ = nullptr;
  Counter* seconds_ = nullptr;
  std::optional<PeriodicTask> task_;  // last: stopped before the counters go
};

}  // namespace weft::common
