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

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace weft::common {

class HeapTrimmer {
 public:
  // Exports weft_process_heap_trims_total and
  // weft_process_heap_trim_seconds_total to `metrics` (may be null).
  HeapTrimmer(absl::Duration interval, MetricsRegistry* metrics);
  ~HeapTrimmer();  // stops the thread
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  // One trim now, on the calling thread. True when malloc_trim released
  // memory.
  bool TrimNow();

 private:
  void Run();

  const absl::Duration interval_;
  Counter* trims_ = nullptr;
  Counter* seconds_ = nullptr;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace weft::common
