#include "common/parallel.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace weft::common {
namespace {

TEST_CASE("ParallelRunner calls every index exactly once, run after run", "[parallel]") {
  for (size_t threads : {1u, 2u, 4u}) {
    ParallelRunner runner(threads);
    CHECK(runner.threads() == threads);
    for (size_t n : {0u, 1u, 2u, 7u, 1000u}) {
      std::vector<std::atomic<int>> calls(n);
      std::atomic<size_t> sum{0};
      runner.Run(n, [&](size_t i) {
        calls[i].fetch_add(1);
        sum.fetch_add(i);
      });
      // Run returned: every call has returned too.
      for (size_t i = 0; i < n; ++i) CHECK(calls[i].load() == 1);
      CHECK(sum.load() == n * (n == 0 ? 0 : n - 1) / 2);
    }
  }
}

TEST_CASE("ParallelRunner spreads slow calls over its threads", "[parallel]") {
  ParallelRunner runner(3);
  std::mutex mu;
  std::set<std::thread::id> seen;
  runner.Run(30, [&](size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  CHECK(seen.size() > 1);
  CHECK(seen.count(std::this_thread::get_id()) == 1);  // the caller works too
}

}  // namespace
}  // namespace weft::common
