// KubeWatcher against the fake API server: pagination, watch resume from the
// last version (bookmarks included), relist on 410 with the difference
// reported, a missing CRD retried, backoff on errors, events split across
// chunks.
#include "discovery/kube_watcher.h"

#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "tests/fake_kube/kube_test_support.h"

namespace weft::discovery {
namespace {

using fake_kube::Eventually;
using fake_kube::FakeApiServer;
using fake_kube::ServiceObject;
using nlohmann::json;

// A watcher of one kind on its own thread.
struct RunningWatcher {
  RunningWatcher(FakeApiServer& server, const std::string& kind, KubeWatcherOptions options = {})
      : client(fake_kube::ClientFor(server)),
        watcher(*client, *FindKubeResource(kind), sink, sleeper, metrics, common::RealClock::Get(), options) {
    thread = std::thread([this] { watcher.Run(); });
  }
  ~RunningWatcher() {
    watcher.Stop();
    sleeper.Interrupt();
    client->Shutdown();
    thread.join();
  }
  double Metric(const std::string& text) {
    std::string rendered = metrics.RenderPrometheus();
    size_t at = rendered.find(text + " ");
    if (at == std::string::npos) return -1;
    return std::stod(rendered.substr(at + text.size() + 1));
  }

  common::MetricsRegistry metrics;
  fake_kube::RecordingSink sink;
  fake_kube::RecordingSleeper sleeper;
  KubeClientPtr client;
  KubeWatcher watcher;
  std::thread thread;
};

KubeWatcherOptions FastOptions() {
  KubeWatcherOptions o;
  o.page_size = 2;
  o.watch_timeout = std::chrono::seconds(30);
  o.read_grace = std::chrono::seconds(5);
  o.backoff.initial = std::chrono::milliseconds(10);
  o.backoff.max = std::chrono::milliseconds(80);
  o.backoff_seed = 42;
  return o;
}

std::vector<std::string> Requests(const FakeApiServer& server, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& line : server.RequestLog()) {
    if (absl::StrContains(line, needle)) out.push_back(line);
  }
  return out;
}

TEST_CASE("a paginated list gathers every page and the watch starts at the list's version", "[kube][watcher]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  for (int i = 0; i < 5; ++i) REQUIRE(server.Create(ServiceObject("default", absl::StrCat("svc-", i), 80 + i)).ok());
  const uint64_t list_rv = server.resource_version();

  RunningWatcher w(server, "Service", FastOptions());
  REQUIRE(Eventually([&] { return w.sink.Synced("Service") == 1; }));
  auto objects = w.sink.Objects("Service");
  REQUIRE(objects.size() == 5);
  CHECK(objects["default/svc-3"]["spec"]["ports"][0]["port"] == 83);
  // List items lack apiVersion/kind; the watcher sets them.
  CHECK(objects["default/svc-0"]["kind"] == "Service");
  CHECK(objects["default/svc-0"]["apiVersion"] == "v1");

  // Three pages of two; the second and third carry the continue token.
  auto lists = Requests(server, "GET /api/v1/services?");
  std::vector<std::string> pages;
  for (const auto& l : lists) {
    if (!absl::StrContains(l, "watch=")) pages.push_back(l);
  }
  REQUIRE(pages.size() == 3);
  CHECK(absl::StrContains(pages[0], "limit=2"));
  CHECK(!absl::StrContains(pages[0], "continue="));
  CHECK(absl::StrContains(pages[1], "continue="));
  CHECK(absl::StrContains(pages[2], "continue="));

  REQUIRE(Eventually([&] { return server.open_watches() == 1; }));
  auto watches = Requests(server, "watch=true");
  REQUIRE(watches.size() == 1);
  CHECK(absl::StrContains(watches[0], absl::StrCat("resourceVersion=", list_rv)));
  CHECK(absl::StrContains(watches[0], "allowWatchBookmarks=true"));
  CHECK(absl::StrContains(watches[0], "timeoutSeconds=30"));

  // Changes arrive through the watch.
  REQUIRE(server.Create(ServiceObject("default", "late", 90)).ok());
  json changed = ServiceObject("default", "svc-1", 8081);
  REQUIRE(server.Update(changed).ok());
  REQUIRE(server.Delete("v1", "Service", "default", "svc-2").ok());
  REQUIRE(Eventually([&] {
    auto o = w.sink.Objects("Service");
    return o.size() == 5 && o.count("default/late") == 1 && o.count("default/svc-2") == 0 &&
           o["default/svc-1"]["spec"]["ports"][0]["port"] == 8081;
  }));
  CHECK(w.Metric("weft_kube_events_total{kind=\"Service\",type=\"ADDED\"}") == 6);
  CHECK(w.Metric("weft_kube_events_total{kind=\"Service\",type=\"MODIFIED\"}") == 1);
  CHECK(w.Metric("weft_kube_events_total{kind=\"Service\",type=\"DELETED\"}") == 1);
  CHECK(w.Metric("weft_kube_last_sync_timestamp_seconds{kind=\"Service\"}") > 1.6e9);
}

TEST_CASE("a dropped watch resumes from the last version seen, bookmarks included, without a relist",
          "[kube][watcher]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  RunningWatcher w(server, "Service", FastOptions());
  REQUIRE(Eventually([&] { return server.open_watches() == 1; }));

  REQUIRE(server.Create(ServiceObject("default", "a", 80)).ok());
  REQUIRE(Eventually([&] { return w.sink.Objects("Service").size() == 1; }));
  const uint64_t after_a = server.resource_version();

  // A change elsewhere (a ConfigMap) moves the global version; only a
  // bookmark tells the watcher it may resume from there.
  REQUIRE(server.Create({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "cm"}}}}).ok());
  const uint64_t bookmark_rv = server.resource_version();
  REQUIRE(bookmark_rv > after_a);
  server.SendBookmarks();
  REQUIRE(Eventually([&] {
    return w.Metric("weft_kube_events_total{kind=\"Service\",type=\"BOOKMARK\"}") >= 1;
  }));

  server.DropWatches();
  REQUIRE(Eventually([&] { return Requests(server, "watch=true").size() == 2 && server.open_watches() == 1; }));
  auto watches = Requests(server, "watch=true");
  CHECK(absl::StrContains(watches[1], absl::StrCat("resourceVersion=", bookmark_rv)));
  CHECK(server.list_requests() == 1);
  CHECK(w.Metric("weft_kube_watch_restarts_total{kind=\"Service\"}") == 1);
  CHECK(w.Metric("weft_kube_relists_total{kind=\"Service\"}") == 0);

  // Events made while it was away arrive once it is back.
  REQUIRE(server.Create(ServiceObject("default", "b", 81)).ok());
  REQUIRE(Eventually([&] { return w.sink.Objects("Service").size() == 2; }));
}

TEST_CASE("410 Gone relists and reports exactly the difference", "[kube][watcher]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  for (const char* n : {"keep", "change", "remove"}) REQUIRE(server.Create(ServiceObject("default", n, 80)).ok());
  RunningWatcher w(server, "Service", FastOptions());
  REQUIRE(Eventually([&] { return w.sink.Synced("Service") == 1 && server.open_watches() == 1; }));
  const int added_before = w.sink.Events(KubeEventType::kAdded);

  SECTION("an ERROR event with code 410 on the open watch") {
    server.StallWatches(std::chrono::milliseconds(300));  // the watcher misses these...
    REQUIRE(server.Update(ServiceObject("default", "change", 8080)).ok());
    REQUIRE(server.Delete("v1", "Service", "default", "remove").ok());
    REQUIRE(server.Create(ServiceObject("default", "new", 80)).ok());
    server.Compact();  // ...and they are compacted away: 410 on the stream
  }
  SECTION("a resume from a compacted version") {
    server.StallWatches(std::chrono::milliseconds(300));
    REQUIRE(server.Update(ServiceObject("default", "change", 8080)).ok());
    REQUIRE(server.Delete("v1", "Service", "default", "remove").ok());
    REQUIRE(server.Create(ServiceObject("default", "new", 80)).ok());
    server.DropWatches();
    server.Compact();
  }
  REQUIRE(Eventually([&] { return w.sink.Synced("Service") == 2; }));
  auto objects = w.sink.Objects("Service");
  CHECK(objects.size() == 3);
  CHECK(objects.count("default/keep") == 1);
  CHECK(objects.count("default/new") == 1);
  CHECK(objects.count("default/remove") == 0);
  CHECK(objects["default/change"]["spec"]["ports"][0]["port"] == 8080);
  // Only the difference: one add (new), one change, one delete; "keep" was not re-added.
  CHECK(w.sink.Events(KubeEventType::kAdded) == added_before + 1);
  CHECK(w.sink.Events(KubeEventType::kModified) == 1);
  CHECK(w.sink.Events(KubeEventType::kDeleted) == 1);
  CHECK(w.Metric("weft_kube_relists_total{kind=\"Service\"}") == 1);
  CHECK(server.list_requests() == 4);  // two lists of two pages (page size 2)
}

TEST_CASE("a list continued from a compacted snapshot starts over", "[kube][watcher]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  for (int i = 0; i < 6; ++i) REQUIRE(server.Create(ServiceObject("default", absl::StrCat("s", i), 80)).ok());
  // The first continue request fails with 410 (as if compacted meanwhile).
  // Simulated by compacting between pages: fail the list's 2nd page.
  KubeWatcherOptions options = FastOptions();
  auto client = fake_kube::ClientFor(server);
  auto first = client->Request("GET", "/api/v1/services?limit=2");
  REQUIRE(first.ok());
  std::string token = json::parse(first->body)["metadata"]["continue"];
  REQUIRE(server.Create(ServiceObject("default", "s9", 80)).ok());
  server.Compact();
  auto stale = client->Request("GET", "/api/v1/services?limit=2&continue=" + UrlEncode(token));
  REQUIRE(stale.ok());
  CHECK(stale->status == 410);
  CHECK(json::parse(stale->body)["reason"] == "Expired");
  // The watcher copes with it by listing from the start.
  RunningWatcher w(server, "Service", options);
  REQUIRE(Eventually([&] { return w.sink.Synced("Service") == 1; }));
  CHECK(w.sink.Objects("Service").size() == 7);
}

TEST_CASE("a missing CRD is a warning and is retried until it appears", "[kube][watcher]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  server.SetGroupInstalled("weft.io", false);
  RunningWatcher w(server, "TrafficPolicy", FastOptions());
  REQUIRE(Eventually([&] { return w.sink.Failures().size() >= 3; }));
  CHECK(absl::IsNotFound(w.sink.Failures()[0]));
  CHECK(w.sink.Synced("TrafficPolicy") == 0);

  server.SetGroupInstalled("weft.io", true);
  REQUIRE(server
              .Create({{"apiVersion", "weft.io/v1alpha1"},
                       {"kind", "TrafficPolicy"},
                       {"metadata", {{"name", "tp"}, {"namespace", "default"}}},
                       {"spec", {{"timeout", "2s"}}}})
              .ok());
  REQUIRE(Eventually([&] { return w.sink.Synced("TrafficPolicy") == 1; }));
  CHECK(w.sink.Objects("TrafficPolicy").count("default/tp") == 1);
}

TEST_CASE("errors back off exponentially with jitter, and success resets the backoff", "[kube][watcher]") {
  SECTION("the policy") {
    BackoffPolicy policy;
    policy.initial = std::chrono::milliseconds(100);
    policy.max = std::chrono::milliseconds(1000);
    policy.jitter = 0.5;
    Backoff backoff(policy, 7);
    std::vector<int64_t> waits;
    for (int i = 0; i < 8; ++i) waits.push_back(backoff.Next().count());
    const int64_t steps[] = {100, 200, 400, 800, 1000, 1000, 1000, 1000};
    for (int i = 0; i < 8; ++i) {
      INFO("attempt " << i);
      CHECK(waits[i] <= steps[i]);
      CHECK(waits[i] >= steps[i] / 2);
    }
    // Jitter: not all the same at the cap.
    CHECK((waits[4] != waits[5] || waits[5] != waits[6] || waits[6] != waits[7]));
    backoff.Reset();
    CHECK(backoff.Next().count() <= 100);
  }
  SECTION("the watcher waits between failed lists") {
    FakeApiServer server;
    REQUIRE(server.Start().ok());
    server.FailNextRequests(4, 500);
    KubeWatcherOptions options = FastOptions();
    options.backoff.initial = std::chrono::milliseconds(100);
    options.backoff.max = std::chrono::milliseconds(10000);
    options.backoff.jitter = 0;
    RunningWatcher w(server, "Service", options);
    REQUIRE(Eventually([&] { return w.sink.Synced("Service") == 1; }));
    auto waits = w.sleeper.Waits();
    REQUIRE(waits.size() == 4);
    CHECK(waits[0].count() == 100);
    CHECK(waits[1].count() == 200);
    CHECK(waits[2].count() == 400);
    CHECK(waits[3].count() == 800);
    // A success resets: the next failure waits the initial step again.
    server.FailNextRequests(1, 500);
    server.DropWatches();
    REQUIRE(Eventually([&] { return w.sleeper.Waits().size() >= 5; }));
    CHECK(w.sleeper.Waits()[4].count() == 100);
  }
}

TEST_CASE("events split across chunks and several per chunk are read whole", "[kube][watcher]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  server.SplitWatchChunks(7);
  RunningWatcher w(server, "Service", FastOptions());
  REQUIRE(Eventually([&] { return server.open_watches() == 1; }));
  for (int i = 0; i < 20; ++i) REQUIRE(server.Create(ServiceObject("default", absl::StrCat("s", i), 80 + i)).ok());
  REQUIRE(Eventually([&] { return w.sink.Objects("Service").size() == 20; }));
  CHECK(w.sink.Objects("Service")["default/s19"]["spec"]["ports"][0]["port"] == 99);
  CHECK(w.Metric("weft_kube_watch_restarts_total{kind=\"Service\"}") == 0);
}

}  // namespace
}  // namespace weft::discovery
