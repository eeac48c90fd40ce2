// KubeRegistry against the fake API server: snapshots like file mode's,
// last good state and status conditions for invalid objects, namespace
// selection, and convergence under dropped watches and expired versions.
#include "discovery/kube_registry.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "discovery/object_decoder.h"
#include "tests/fake_kube/kube_test_support.h"

namespace weft::discovery {
namespace {

using fake_kube::Eventually;
using fake_kube::FakeApiServer;
using fake_kube::NamespaceObject;
using fake_kube::ServiceObject;
using nlohmann::json;

json WorkloadObject(const std::string& ns, const std::string& name, int port,
                    const std::string& app = "orders") {
  return {{"apiVersion", "weft.io/v1alpha1"},
          {"kind", "Workload"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
          {"spec", {{"address", "127.0.0.1"}, {"ports", {{"http", port}}}, {"serviceAccount", app}}}};
}

json TrafficPolicyObject(const std::string& ns, const std::string& name, const std::string& timeout) {
  return {{"apiVersion", "weft.io/v1alpha1"},
          {"kind", "TrafficPolicy"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"targetRefs", {{{"kind", "Service"}, {"name", "orders"}}}}, {"timeout", timeout}}}};
}

KubeRegistryOptions FastOptions() {
  KubeRegistryOptions o;
  o.quiet_period = std::chrono::milliseconds(20);
  o.max_delay = std::chrono::milliseconds(200);
  o.initial_sync_timeout = std::chrono::milliseconds(5000);
  o.watcher.watch_timeout = std::chrono::seconds(30);
  o.watcher.read_grace = std::chrono::seconds(5);
  o.watcher.backoff.initial = std::chrono::milliseconds(5);
  o.watcher.backoff.max = std::chrono::milliseconds(100);
  o.watcher.page_size = 7;
  return o;
}

// The snapshot file mode would build from the server's objects now.
MeshSnapshot ExpectedFrom(const FakeApiServer& server) {
  MeshSnapshot expected;
  for (const KubeResource& r : WatchedKubeResources()) {
    for (const json& o : server.List(r.ApiVersion(), r.kind)) {
      DecodeResult d = DecodeObject(o, SourceRef{"", -1});
      if (d.decoded()) AddToSnapshot(std::move(*d.object), expected);
    }
  }
  return expected;
}

// Collects every snapshot delivered.
struct Snapshots {
  void operator()(MeshSnapshotConstSharedPtr s) {
    absl::MutexLock lock(&mu);
    all.push_back(std::move(s));
  }
  MeshSnapshotConstSharedPtr Last() {
    absl::MutexLock lock(&mu);
    return all.empty() ? nullptr : all.back();
  }
  size_t Count() {
    absl::MutexLock lock(&mu);
    return all.size();
  }
  absl::Mutex mu;
  std::vector<MeshSnapshotConstSharedPtr> all;
};

TEST_CASE("the registry delivers a first snapshot before Run returns, then each change", "[kube][registry]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  REQUIRE(server.Create(NamespaceObject("shop")).ok());
  REQUIRE(server.Create(ServiceObject("shop", "orders", 8080)).ok());
  REQUIRE(server.Create(WorkloadObject("shop", "orders-0", 18080)).ok());
  REQUIRE(server.Create(TrafficPolicyObject("shop", "tp", "2s")).ok());
  auto client = fake_kube::ClientFor(server);
  common::MetricsRegistry metrics;
  KubeRegistry registry(*client, metrics, FastOptions());
  Snapshots snapshots;
  REQUIRE(registry.Run([&](MeshSnapshotConstSharedPtr s) { snapshots(std::move(s)); }).ok());
  REQUIRE(snapshots.Count() == 1);
  MeshSnapshotConstSharedPtr first = snapshots.Last();
  CHECK(first->version == 1);
  CHECK(first->services.count("shop/orders") == 1);
  CHECK(first->services.at("shop/orders").meta.source.ToString() == "kubernetes");
  CHECK(first->workloads.at("shop/orders-0").ports.at("http") == 18080);
  CHECK(first->policies.count("TrafficPolicy/shop/tp") == 1);
  CHECK(first->namespaces.count("shop") == 1);

  REQUIRE(server.Update(WorkloadObject("shop", "orders-0", 19090)).ok());
  REQUIRE(Eventually([&] {
    auto s = registry.Current();
    return s->workloads.at("shop/orders-0").ports.at("http") == 19090;
  }));
  CHECK(registry.Current()->version > 1);
  REQUIRE(server.Delete("v1", "Service", "shop", "orders").ok());
  REQUIRE(Eventually([&] { return registry.Current()->services.empty(); }));
  // Valid weft objects are marked Accepted.
  REQUIRE(Eventually([&] {
    auto tp = server.Get("weft.io/v1alpha1", "TrafficPolicy", "shop", "tp");
    return tp && tp->contains("status") && (*tp)["status"]["conditions"][0]["status"] == "True";
  }));
  registry.Stop();
  const size_t count = snapshots.Count();
  REQUIRE(server.Create(ServiceObject("shop", "late", 80)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(snapshots.Count() == count);  // nothing after Stop()
  CHECK(absl::StrContains(metrics.RenderPrometheus(),
                          "weft_kube_events_total{kind=\"Workload\",type=\"MODIFIED\"}"));
}

TEST_CASE("an invalid object keeps its last good version, is reported, and gets Accepted=False",
          "[kube][registry]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  REQUIRE(server.Create(WorkloadObject("default", "w", 18080)).ok());
  auto client = fake_kube::ClientFor(server);
  common::MetricsRegistry metrics;
  KubeRegistry registry(*client, metrics, FastOptions());
  REQUIRE(registry.Run([](MeshSnapshotConstSharedPtr) {}).ok());

  json broken = WorkloadObject("default", "w", 18080);
  broken["spec"]["ports"]["http"] = 70000;
  REQUIRE(server.Update(broken).ok());
  REQUIRE(Eventually([&] { return registry.Current()->errors.size() == 1; }));
  auto snapshot = registry.Current();
  CHECK(snapshot->errors[0].field == "spec.ports.http");
  CHECK(snapshot->errors[0].kind == "Workload");
  CHECK(snapshot->workloads.at("default/w").ports.at("http") == 18080);  // last good

  // The status says why, with the field path, for this generation.
  REQUIRE(Eventually([&] {
    auto w = server.Get("weft.io/v1alpha1", "Workload", "default", "w");
    return w && w->contains("status") && (*w)["status"]["conditions"][0]["status"] == "False";
  }));
  json w = *server.Get("weft.io/v1alpha1", "Workload", "default", "w");
  json condition = w["status"]["conditions"][0];
  CHECK(condition["type"] == "Accepted");
  CHECK(condition["reason"] == "Invalid");
  CHECK(absl::StrContains(condition["message"].get<std::string>(), "spec.ports.http"));
  CHECK(condition["observedGeneration"] == w["metadata"]["generation"]);
  // Writing the status does not loop: the version settles.
  const uint64_t rv = server.resource_version();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(server.resource_version() == rv);

  // Fixed: the error goes, the new version applies, Accepted=True.
  REQUIRE(server.Update(WorkloadObject("default", "w", 18081)).ok());
  REQUIRE(Eventually([&] {
    auto s = registry.Current();
    return s->errors.empty() && s->workloads.at("default/w").ports.at("http") == 18081;
  }));
  REQUIRE(Eventually([&] {
    auto o = server.Get("weft.io/v1alpha1", "Workload", "default", "w");
    return (*o)["status"]["conditions"][0]["status"] == "True" &&
           (*o)["status"]["conditions"][0]["reason"] == "Accepted";
  }));
}

TEST_CASE("with policy verdicts, a policy's status is the validator's, for the generation it judged",
          "[kube][registry][status]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  REQUIRE(server.Create(NamespaceObject("shop")).ok());
  REQUIRE(server.Create(TrafficPolicyObject("shop", "tp", "2s")).ok());
  REQUIRE(server.Create(WorkloadObject("shop", "w", 18080)).ok());
  auto client = fake_kube::ClientFor(server);
  common::MetricsRegistry metrics;
  KubeRegistryOptions options = FastOptions();
  options.policy_verdicts = true;
  KubeRegistry registry(*client, metrics, options);
  REQUIRE(registry.Run([](MeshSnapshotConstSharedPtr) {}).ok());
  auto accepted = [&](const std::string& kind, const std::string& name) {
    auto o = server.Get("weft.io/v1alpha1", kind, "shop", name);
    if (!o || !o->contains("status") || !(*o)["status"].contains("conditions")) return json();
    return (*o)["status"]["conditions"][0];
  };
  // Not a policy: Accepted once it decodes. The policy waits for a verdict.
  REQUIRE(Eventually([&] { return accepted("Workload", "w").is_object(); }));
  CHECK(accepted("TrafficPolicy", "tp").is_null());

  KubeObjectVerdict invalid;
  invalid.conditions.push_back(KubeCondition{"Accepted", false, "Invalid", "spec.timeout: too long", 0});
  registry.ReportVerdicts(registry.Current()->version + 1,
                          {{"TrafficPolicy/shop/tp", invalid}});  // unpublished
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(accepted("TrafficPolicy", "tp").is_null());
  // Like weftd: the validator reports on every snapshot published (a
  // status write is a new resourceVersion, so it publishes one too).
  auto report = [&](const KubeObjectVerdict& verdict, const std::function<bool()>& done) {
    return Eventually([&] {
      registry.ReportVerdicts(registry.Current()->version, {{"TrafficPolicy/shop/tp", verdict}});
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return done();
    });
  };
  REQUIRE(report(invalid, [&] { return accepted("TrafficPolicy", "tp").is_object(); }));
  json condition = accepted("TrafficPolicy", "tp");
  CHECK(condition["status"] == "False");
  CHECK(condition["message"] == "spec.timeout: too long");
  CHECK(condition["observedGeneration"] == 1);

  // A new generation: a verdict on an older snapshot that arrives late is
  // not written for it.
  const uint64_t old_version = registry.Current()->version;
  REQUIRE(server.Update(TrafficPolicyObject("shop", "tp", "3s")).ok());
  REQUIRE(Eventually([&] { return registry.Current()->version > old_version; }));
  registry.ReportVerdicts(old_version, {{"TrafficPolicy/shop/tp", invalid}});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(accepted("TrafficPolicy", "tp")["observedGeneration"] == 1);
  KubeObjectVerdict valid;
  valid.conditions.push_back(KubeCondition{"Accepted", true, "Accepted", "", 0});
  REQUIRE(report(valid, [&] { return accepted("TrafficPolicy", "tp").value("status", "") == "True"; }));
  CHECK(accepted("TrafficPolicy", "tp")["observedGeneration"] == 2);

  // Reporting the same again writes nothing: the version settles.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t rv = server.resource_version();
  for (int i = 0; i < 5; ++i) {
    registry.ReportVerdicts(registry.Current()->version, {{"TrafficPolicy/shop/tp", valid}});
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }
  CHECK(server.resource_version() == rv);
  CHECK(absl::StrContains(metrics.RenderPrometheus(), "weft_kube_status_writes_total 3"));
}

TEST_CASE("the namespace selector admits only labelled namespaces, and follows label changes",
          "[kube][registry]") {
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  REQUIRE(server.Create(NamespaceObject("meshed", {{"weft.io/discovery", "enabled"}})).ok());
  REQUIRE(server.Create(NamespaceObject("other")).ok());
  REQUIRE(server.Create(ServiceObject("meshed", "a", 80)).ok());
  REQUIRE(server.Create(ServiceObject("other", "b", 80)).ok());
  auto client = fake_kube::ClientFor(server);
  common::MetricsRegistry metrics;
  KubeRegistryOptions options = FastOptions();
  options.namespace_selector = "weft.io/discovery=enabled";
  KubeRegistry registry(*client, metrics, options);
  REQUIRE(registry.Run([](MeshSnapshotConstSharedPtr) {}).ok());
  auto s = registry.Current();
  CHECK(s->services.count("meshed/a") == 1);
  CHECK(s->services.count("other/b") == 0);
  CHECK(s->namespaces.count("meshed") == 1);
  CHECK(s->namespaces.count("other") == 0);
  CHECK(s->namespaces.count("default") == 0);

  REQUIRE(server.Update(NamespaceObject("other", {{"weft.io/discovery", "enabled"}})).ok());
  REQUIRE(Eventually([&] { return registry.Current()->services.count("other/b") == 1; }));
  REQUIRE(server.Update(NamespaceObject("meshed")).ok());
  REQUIRE(Eventually([&] { return registry.Current()->services.count("meshed/a") == 0; }));

  KubeRegistryOptions bad = FastOptions();
  bad.namespace_selector = "novalue";
  KubeRegistry refused(*client, metrics, bad);
  CHECK(!refused.Run([](MeshSnapshotConstSharedPtr) {}).ok());
}

TEST_CASE("Run fails with a clear message when the API server cannot be reached", "[kube][registry]") {
  KubeConfig config;
  config.scheme = "http";
  config.host = "127.0.0.1";
  config.port = 1;  // nothing listens there
  config.source = "test";
  auto client = KubeClient::Create(config);
  REQUIRE(client.ok());
  common::MetricsRegistry metrics;
  KubeRegistryOptions options = FastOptions();
  options.initial_sync_timeout = std::chrono::milliseconds(300);
  KubeRegistry registry(**client, metrics, options);
  absl::Status s = registry.Run([](MeshSnapshotConstSharedPtr) {});
  REQUIRE(!s.ok());
  CHECK(absl::StrContains(s.message(), "127.0.0.1:1"));
}

TEST_CASE("convergence: 1000 random changes while watches drop 100 times and versions expire 10 times",
          "[kube][registry][convergence]") {
  const auto started = std::chrono::steady_clock::now();
  FakeApiServer server;
  REQUIRE(server.Start().ok());
  const std::vector<std::string> namespaces = {"shop", "ops", "default"};
  REQUIRE(server.Create(NamespaceObject("shop")).ok());
  REQUIRE(server.Create(NamespaceObject("ops")).ok());
  auto client = fake_kube::ClientFor(server);
  common::MetricsRegistry metrics;
  KubeRegistry registry(*client, metrics, FastOptions());
  REQUIRE(registry.Run([](MeshSnapshotConstSharedPtr) {}).ok());

  std::mt19937 rng(20261126);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  int creates = 0, updates = 0, deletes = 0, drops = 0, expiries = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string ns = namespaces[pick(3)];
    const std::string name = absl::StrCat("o", pick(12));
    const int port = 1000 + pick(60000);
    json object;
    switch (pick(4)) {
      case 0:
        object = ServiceObject(ns, name, port);
        break;
      case 1:
        object = WorkloadObject(ns, name, port);
        break;
      case 2:
        object = TrafficPolicyObject(ns, name, absl::StrCat(port, "ms"));
        break;
      default:
        object = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", name}}}}},
                  {"spec", {{"serviceAccountName", "sa"}}},
                  {"status", {{"podIP", absl::StrCat("10.0.0.", port % 250)}}}};
    }
    const std::string api_version = object["apiVersion"];
    const std::string kind = object["kind"];
    const bool exists = server.Get(api_version, kind, ns, name).has_value();
    if (!exists) {
      REQUIRE(server.Create(object).ok());
      ++creates;
    } else if (pick(10) < 7) {
      REQUIRE(server.Apply(object).ok());
      ++updates;
    } else {
      REQUIRE(server.Delete(api_version, kind, ns, name).ok());
      ++deletes;
    }
    if (i % 10 == 5) {
      server.DropWatches();
      ++drops;
    }
    if (i % 100 == 50) {
      server.Compact();
      server.ExpireWatches();
      ++expiries;
    }
    if (i % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  CHECK(drops == 100);
  CHECK(expiries == 10);
  INFO("creates " << creates << ", updates " << updates << ", deletes " << deletes);

  // The registry ends equal to the server: no lost, no phantom objects.
  // (Status writes may still be moving the weft objects' versions: compare
  // until both agree.)
  bool converged = Eventually(
      [&] {
        MeshSnapshot expected = ExpectedFrom(server);
        auto actual = registry.Current();
        return SameContent(expected, *actual);
      },
      std::chrono::seconds(20));
  MeshSnapshot expected = ExpectedFrom(server);
  auto actual = registry.Current();
  INFO("expected " << expected.services.size() << " services, " << expected.workloads.size() << " workloads, "
                   << expected.pods.size() << " pods, " << expected.policies.size() << " policies; got "
                   << actual->services.size() << ", " << actual->workloads.size() << ", "
                   << actual->pods.size() << ", " << actual->policies.size());
  REQUIRE(converged);
  CHECK(actual->errors.empty());
  const std::string rendered = metrics.RenderPrometheus();
  CHECK(absl::StrContains(rendered, "weft_kube_relists_total{kind=\"Service\"}"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN("convergence test: " << creates << " creates, " << updates << " updates, " << deletes << " deletes, "
                            << server.watch_requests() << " watch requests, " << server.list_requests()
                            << " list requests, " << seconds << " s");
  CHECK(seconds < 30);
}

}  // namespace
}  // namespace weft::discovery
