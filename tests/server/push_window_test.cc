// PushWindow: the bound on proxies holding an unanswered push.
#include "server/push_window.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace weft::server {
namespace {

using namespace std::chrono_literals;

double CounterValue(common::MetricsRegistry& m, const std::string& name) {
  return m.GetCounter(name, "").Value();
}

TEST_CASE("PushWindow: a full window makes the fan-out wait until a slot is given back", "[push_window]") {
  common::MetricsRegistry metrics;
  PushWindow window(2, absl::Seconds(30), &metrics);
  const uint64_t s1 = window.Acquire(true);
  const uint64_t s2 = window.Acquire(true);
  CHECK(s1 != s2);
  CHECK(window.in_use() == 2);
  std::atomic<uint64_t> s3{0};
  std::thread waiter([&] { s3 = window.Acquire(true); });
  std::this_thread::sleep_for(200ms);
  CHECK(s3 == 0);  // still waiting
  window.Release(s1);
  waiter.join();
  CHECK(s3 != 0);
  CHECK(window.in_use() == 2);
  CHECK(CounterValue(metrics, "weft_xds_push_window_waits_total") == 1);
  CHECK(metrics.GetGauge("weft_xds_push_window_in_use", "").Value() == 2);
}

TEST_CASE("PushWindow: threads that may not wait go over the bound, counted", "[push_window]") {
  common::MetricsRegistry metrics;
  PushWindow window(1, absl::Seconds(30), &metrics);
  window.Acquire(true);
  const uint64_t over = window.Acquire(false);
  CHECK(window.in_use() == 2);
  CHECK(CounterValue(metrics, "weft_xds_push_window_overruns_total") == 1);
  window.Release(over);
  window.Release(over);  // twice: no effect
  CHECK(window.in_use() == 1);
}

TEST_CASE("PushWindow: a slot not given back in time stops counting", "[push_window]") {
  common::MetricsRegistry metrics;
  PushWindow window(1, absl::Milliseconds(200), &metrics);
  const uint64_t stuck = window.Acquire(true);
  const auto start = std::chrono::steady_clock::now();
  const uint64_t next = window.Acquire(true);
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  CHECK(window.in_use() == 1);
  CHECK(CounterValue(metrics, "weft_xds_push_window_timeouts_total") == 1);
  window.Release(stuck);  // already free: no effect on the live slot
  CHECK(window.in_use() == 1);
  window.Release(next);
  CHECK(window.in_use() == 0);
}

TEST_CASE("PushWindow: size 0 never waits, and unanswered slots still time out", "[push_window]") {
  PushWindow window(0, absl::Milliseconds(100));
  for (int i = 0; i < 1000; ++i) window.Acquire(true);
  CHECK(window.in_use() == 1000);
  std::this_thread::sleep_for(150ms);
  window.Acquire(true);
  CHECK(window.in_use() == 1);  // the 1,000 never answered: dropped, not kept forever
}

}  // namespace
}  // namespace weft::server
