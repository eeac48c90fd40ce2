#include "common/heap_trimmer.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace weft::common {
namespace {

long RssAnonKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::atol(line.c_str() + 8);
  }
  return -1;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcMalloc = false;  // ASan's allocator: malloc_trim has nothing to do
#else
constexpr bool kGlibcMalloc = true;
#endif

TEST_CASE("HeapTrimmer hands freed pages in the middle of the heap back to the kernel") {
  // 64 MB in 16 KB blocks (below the mmap threshold: from the heap), then
  // every block freed but one in 64: the free runs lie between live blocks,
  // so free() alone cannot shrink the heap.
  constexpr size_t kBlock = 16 << 10;
  std::vector<char*> blocks(4096);
  for (auto& b : blocks) {
    b = static_cast<char*>(std::malloc(kBlock));
    std::memset(b, 1, kBlock);  // resident
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i % 64 != 63) {
      std::free(blocks[i]);
      blocks[i] = nullptr;
    }
  }
  const long before = RssAnonKb();
  MetricsRegistry metrics;
  HeapTrimmer trimmer(absl::Hours(1), &metrics);  // no background trim during the test
  const bool released = trimmer.TrimNow();
  const long after = RssAnonKb();
  for (char* b : blocks) std::free(b);
  if (kGlibcMalloc) {
    CHECK(released);
    INFO("RssAnon before " << before << " kB, after " << after << " kB");
    CHECK(before - after > 32 * 1024);  // most of the ~63 MB freed
  }
  CHECK(metrics.GetCounter("weft_process_heap_trims_total", "").Value() == 1);
}

TEST_CASE("HeapTrimmer trims on its own thread at its interval and stops promptly") {
  MetricsRegistry metrics;
  auto start = std::chrono::steady_clock::now();
  {
    HeapTrimmer trimmer(absl::Milliseconds(10), &metrics);
    auto& trims = metrics.GetCounter("weft_process_heap_trims_total", "");
    while (trims.Value() < 3 && std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(trims.Value() >= 3);
  }
  // Destruction does not wait for a long interval to end.
  auto stop_start = std::chrono::steady_clock::now();
  { HeapTrimmer other(absl::Hours(1), nullptr); }
  CHECK(std::chrono::steady_clock::now() - stop_start < std::chrono::seconds(10));
}

}  // namespace
}  // namespace weft::common
