#include "server/push_debouncer.h"

#include <catch2/catch.hpp>
#include <vector>

namespace weft::server {
namespace {

using std::chrono::milliseconds;

struct Recorder {
  std::vector<uint64_t> versions;
  std::vector<common::Clock::TimePoint> first_changes;
  PushDebouncer::Flush flush() {
    return [this](discovery::MeshSnapshotConstSharedPtr mesh, common::Clock::TimePoint first) {
      versions.push_back(mesh->version);
      first_changes.push_back(first);
    };
  }
};

discovery::MeshSnapshotConstSharedPtr Mesh(uint64_t version) {
  auto m = std::make_shared<discovery::MeshSnapshot>();
  m->version = version;
  return m;
}

TEST_CASE("the first snapshot is pushed at once", "[debounce]") {
  common::FakeClock clock;
  Recorder rec;
  PushDebouncer d(clock, {milliseconds(20), milliseconds(500)}, rec.flush());
  d.Add(Mesh(1));
  CHECK(rec.versions == std::vector<uint64_t>{1});
}

TEST_CASE("a burst is coalesced into one push of the newest snapshot after the quiet period",
          "[debounce]") {
  common::FakeClock clock;
  Recorder rec;
  PushDebouncer d(clock, {milliseconds(20), milliseconds(500)}, rec.flush());
  d.Add(Mesh(1));
  auto start = clock.Now();
  d.Add(Mesh(2));
  clock.Advance(milliseconds(10));
  d.Add(Mesh(3));
  clock.Advance(milliseconds(15));  // 15 ms since the last change: not quiet yet
  CHECK(d.Poll().has_value());
  CHECK(rec.versions.size() == 1);
  clock.Advance(milliseconds(5));
  CHECK_FALSE(d.Poll().has_value());
  CHECK(rec.versions == std::vector<uint64_t>{1, 3});
  CHECK(rec.first_changes.back() == start);  // convergence counts from the first change
}

TEST_CASE("a never-quiet stream of changes is pushed at the maximum delay", "[debounce]") {
  common::FakeClock clock;
  Recorder rec;
  PushDebouncer d(clock, {milliseconds(20), milliseconds(500)}, rec.flush());
  d.Add(Mesh(1));
  for (int i = 2; i <= 60; ++i) {  // a change every 10 ms for 590 ms
    d.Add(Mesh(i));
    clock.Advance(milliseconds(10));
    d.Poll();
  }
  REQUIRE(rec.versions.size() == 2);
  CHECK(rec.versions[1] == 51);  // flushed when 500 ms had passed since version 2
}

TEST_CASE("the background loop flushes with the real clock", "[debounce]") {
  Recorder rec;
  std::mutex mu;
  std::vector<uint64_t> seen;
  PushDebouncer d(common::RealClock::Get(), {milliseconds(5), milliseconds(50)},
                  [&](discovery::MeshSnapshotConstSharedPtr mesh, common::Clock::TimePoint) {
                    std::lock_guard<std::mutex> lock(mu);
                    seen.push_back(mesh->version);
                  });
  d.Start();
  d.Add(Mesh(1));
  d.Add(Mesh(2));
  d.Add(Mesh(3));
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (seen.size() == 2) break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  d.Stop();
  std::lock_guard<std::mutex> lock(mu);
  CHECK(seen == std::vector<uint64_t>{1, 3});
}

}  // namespace
}  // namespace weft::server
