#include "discovery/file_registry.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace weft::discovery {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/weft_file_registry_test.XXXXXX";
    char* dir = mkdtemp(tmpl);
    REQUIRE(dir != nullptr);
    path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Path(const std::string& rel) const { return path_ + "/" + rel; }

  void Write(const std::string& rel, const std::string& text) const {
    fs::create_directories(fs::path(Path(rel)).parent_path());
    std::ofstream out(Path(rel), std::ios::trunc);
    out << text;
    REQUIRE(out.good());
  }
  // What editors do: write a temporary file, then rename it over the target.
  void WriteAtomically(const std::string& rel, const std::string& text) const {
    const std::string tmp = Path(rel) + ".tmp~";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      REQUIRE(out.good());
    }
    REQUIRE(std::rename(tmp.c_str(), Path(rel).c_str()) == 0);
  }
  void Remove(const std::string& rel) const { REQUIRE(fs::remove(Path(rel))); }

 private:
  std::string path_;
};

// Collects delivered snapshots and lets a test wait for one, with a bound.
class SnapshotSink {
 public:
  SnapshotCallback Callback() {
    return [this](MeshSnapshotConstSharedPtr s) {
      std::lock_guard<std::mutex> lock(mu_);
      snapshots_.push_back(std::move(s));
      cv_.notify_all();
    };
  }
  size_t Count() {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_.size();
  }
  // Each delivered snapshot's version is the previous one's plus one.
  bool VersionsConsecutive() {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < snapshots_.size(); ++i) {
      if (snapshots_[i]->version != i + 1) return false;
    }
    return true;
  }
  MeshSnapshotConstSharedPtr Last() {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_.empty() ? nullptr : snapshots_.back();
  }
  // Waits up to 5 s for a snapshot satisfying `pred`; returns it or nullptr.
  MeshSnapshotConstSharedPtr WaitFor(const std::function<bool(const MeshSnapshot&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    MeshSnapshotConstSharedPtr found;
    cv_.wait_for(lock, std::chrono::seconds(5), [&] {
      if (!snapshots_.empty() && pred(*snapshots_.back())) found = snapshots_.back();
      return found != nullptr;
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MeshSnapshotConstSharedPtr> snapshots_;
};

std::string ServiceYaml(const std::string& name, int port) {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
         ", namespace: shop}\nspec:\n  ports:\n  - port: " + std::to_string(port) + "\n";
}

std::string WorkloadYaml(const std::string& name, const std::string& address) {
  return "apiVersion: weft.io/v1alpha1\nkind: Workload\nmetadata: {name: " + name +
         ", namespace: shop, labels: {app: orders}}\nspec:\n  address: " + address +
         "\n  ports: {http: 18081}\n";
}

uint32_t PortOf(const MeshSnapshot& s, const std::string& key) {
  auto it = s.services.find(key);
  return it == s.services.end() || it->second.ports.empty() ? 0 : it->second.ports[0].port;
}

FileRegistryOptions FastOptions() {
  FileRegistryOptions options;
  options.quiet_period = milliseconds(20);
  return options;
}

TEST_CASE("FileRegistry: missing directory is an error naming it", "[file_registry]") {
  common::MetricsRegistry metrics;
  FileRegistry registry("/tmp/weft-no-such-dir-for-tests", metrics, FastOptions());
  SnapshotSink sink;
  absl::Status status = registry.Run(sink.Callback());
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK(std::string(status.message()).find("/tmp/weft-no-such-dir-for-tests") != std::string::npos);
  CHECK(sink.Count() == 0);

  TempDir dir;
  dir.Write("file.yaml", "");
  FileRegistry on_file(dir.Path("file.yaml"), metrics, FastOptions());
  status = on_file.Run(sink.Callback());
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(status.message()).find(dir.Path("file.yaml")) != std::string::npos);
}

TEST_CASE("FileRegistry: initial snapshot, skipping tokens and hidden files", "[file_registry]") {
  TempDir dir;
  dir.Write("b.yaml", ServiceYaml("orders", 80) + "---\n" + WorkloadYaml("orders-0", "127.0.0.1"));
  dir.Write("a/inventory.json",
            R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "inventory",
                "namespace": "shop"}, "spec": {"ports": [{"port": 81}]}})");
  dir.Write("c.yml", ServiceYaml("payments", 82));
  dir.Write("tokens.yaml", "tokens:\n- token: secret\n  namespace: shop\n  serviceAccount: orders\n");
  dir.Write(".hidden.yaml", ServiceYaml("hidden", 83));
  dir.Write(".git/config.yaml", ServiceYaml("git", 84));
  dir.Write("notes.txt", ServiceYaml("notes", 85));

  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics, FastOptions());
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());
  REQUIRE(sink.Count() == 1);  // delivered before Run() returned
  MeshSnapshotConstSharedPtr s = sink.Last();
  CHECK(s->version == 1);
  CHECK(s->errors.empty());
  CHECK(s->services.size() == 3);
  CHECK(PortOf(*s, "shop/inventory") == 81);
  CHECK(PortOf(*s, "shop/orders") == 80);
  CHECK(PortOf(*s, "shop/payments") == 82);
  REQUIRE(s->workloads.count("shop/orders-0") == 1);
  CHECK(s->workloads.at("shop/orders-0").meta.source.ToString() == dir.Path("b.yaml") + "#1");
  CHECK(registry.Current() == s);

  const std::string text = metrics.RenderPrometheus();
  CHECK(text.find("weft_config_errors 0") != std::string::npos);
  CHECK(text.find("weft_config_reloads_total{result=\"ok\"} 1") != std::string::npos);
  registry.Stop();
}

TEST_CASE("FileRegistry: follows changes", "[file_registry]") {
  TempDir dir;
  dir.Write("orders.yaml", ServiceYaml("orders", 80));
  dir.Write("workloads.yaml", WorkloadYaml("orders-0", "127.0.0.1"));
  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics, FastOptions());
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());
  REQUIRE(sink.Last()->version == 1);

  // Modify a file in place.
  dir.Write("orders.yaml", ServiceYaml("orders", 8080));
  auto s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 8080; });
  REQUIRE(s != nullptr);
  CHECK(s->version > 1);

  // A new subdirectory with a file in it.
  dir.Write("team/sub/payments.yaml", ServiceYaml("payments", 90));
  s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/payments") == 90; });
  REQUIRE(s != nullptr);
  // ... and later changes inside it.
  dir.Write("team/sub/payments.yaml", ServiceYaml("payments", 91));
  s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/payments") == 91; });
  REQUIRE(s != nullptr);

  // An editor's save: temporary file renamed over the original.
  dir.WriteAtomically("orders.yaml", ServiceYaml("orders", 8081));
  s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 8081; });
  REQUIRE(s != nullptr);
  CHECK(s->errors.empty());

  // Break the file: the error is reported and the last good objects stay.
  const uint64_t before = s->version;
  dir.WriteAtomically("orders.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: orders\n");
  s = sink.WaitFor([](const MeshSnapshot& s) { return !s.errors.empty(); });
  REQUIRE(s != nullptr);
  CHECK(s->version == before + 1);
  REQUIRE(s->errors.size() == 1);
  CHECK(s->errors[0].source.file == dir.Path("orders.yaml"));
  CHECK(s->errors[0].reason.find("invalid YAML: line ") == 0);
  CHECK(PortOf(*s, "shop/orders") == 8081);
  CHECK(s->workloads.count("shop/orders-0") == 1);
  std::string text = metrics.RenderPrometheus();
  CHECK(text.find("weft_config_errors 1") != std::string::npos);
  CHECK(text.find("weft_config_reloads_total{result=\"error\"}") != std::string::npos);

  // Fix it: the error goes away.
  dir.WriteAtomically("orders.yaml", ServiceYaml("orders", 8082));
  s = sink.WaitFor(
      [](const MeshSnapshot& s) { return s.errors.empty() && PortOf(s, "shop/orders") == 8082; });
  REQUIRE(s != nullptr);
  CHECK(metrics.RenderPrometheus().find("weft_config_errors 0") != std::string::npos);

  // Delete a file: its objects go.
  dir.Remove("workloads.yaml");
  s = sink.WaitFor([](const MeshSnapshot& s) { return s.workloads.empty(); });
  REQUIRE(s != nullptr);
  CHECK(PortOf(*s, "shop/orders") == 8082);

  // One version per published snapshot, and nothing published twice.
  CHECK(sink.VersionsConsecutive());
  CHECK(s->version == sink.Count());
  CHECK(s->version >= 8);
  registry.Stop();
}

TEST_CASE("FileRegistry: an invalid document keeps that object's last good version", "[file_registry]") {
  TempDir dir;
  dir.Write("mesh.yaml", ServiceYaml("orders", 80) + "---\n" + ServiceYaml("payments", 90));
  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics, FastOptions());
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());

  // payments becomes invalid, orders changes validly.
  dir.WriteAtomically("mesh.yaml", ServiceYaml("orders", 81) + "---\n" + ServiceYaml("payments", 0));
  auto s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 81; });
  REQUIRE(s != nullptr);
  REQUIRE(s->errors.size() == 1);
  CHECK(s->errors[0].ToString() == dir.Path("mesh.yaml") +
                                       "#1: Service shop/payments: spec.ports[0].port: must be an "
                                       "integer between 1 and 65535");
  CHECK(PortOf(*s, "shop/payments") == 90);

  // Still broken on the next edit: the last good version is still kept.
  dir.WriteAtomically("mesh.yaml", ServiceYaml("orders", 82) + "---\n" + ServiceYaml("payments", 0));
  s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 82; });
  REQUIRE(s != nullptr);
  CHECK(PortOf(*s, "shop/payments") == 90);
  CHECK(s->errors.size() == 1);

  // Dropped from the file: gone.
  dir.WriteAtomically("mesh.yaml", ServiceYaml("orders", 82));
  s = sink.WaitFor([](const MeshSnapshot& s) { return s.services.size() == 1; });
  REQUIRE(s != nullptr);
  CHECK(s->errors.empty());
  registry.Stop();
}

TEST_CASE("FileRegistry: duplicates, first path wins", "[file_registry]") {
  TempDir dir;
  dir.Write("a.yaml", ServiceYaml("orders", 80));
  dir.Write("b.yaml", ServiceYaml("orders", 81));
  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics, FastOptions());
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());
  auto s = sink.Last();
  CHECK(PortOf(*s, "shop/orders") == 80);
  REQUIRE(s->errors.size() == 1);
  CHECK(s->errors[0].source == SourceRef{dir.Path("b.yaml"), 0});
  CHECK(s->errors[0].reason == "duplicate: already defined in " + dir.Path("a.yaml") + "#0");
  CHECK(metrics.RenderPrometheus().find("weft_config_reloads_total{result=\"error\"} 1") !=
        std::string::npos);
}

TEST_CASE("FileRegistry: no-op changes publish nothing", "[file_registry]") {
  TempDir dir;
  dir.Write("orders.yaml", ServiceYaml("orders", 80));
  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics, FastOptions());
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());
  // Written atomically so that no read can see a half-written file.
  dir.WriteAtomically("orders.yaml", ServiceYaml("orders", 80));  // same content
  dir.Write("README.txt", "not a manifest");
  std::this_thread::sleep_for(milliseconds(100));                // let those be read on their own
  dir.WriteAtomically("marker.yaml", ServiceYaml("marker", 1));  // a real change, to sync on
  auto s = sink.WaitFor([](const MeshSnapshot& s) { return s.services.count("shop/marker") > 0; });
  REQUIRE(s != nullptr);
  CHECK(s->version == 2);
  CHECK(sink.Count() == 2);
}

TEST_CASE("FileRegistry: Stop() stops callbacks", "[file_registry]") {
  TempDir dir;
  dir.Write("orders.yaml", ServiceYaml("orders", 80));
  common::MetricsRegistry metrics;
  SnapshotSink sink;
  {
    FileRegistry registry(dir.path(), metrics, FastOptions());
    REQUIRE(registry.Run(sink.Callback()).ok());
    dir.Write("orders.yaml", ServiceYaml("orders", 81));
    REQUIRE(sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 81; }));
    registry.Stop();
    const size_t count = sink.Count();
    dir.Write("orders.yaml", ServiceYaml("orders", 82));
    std::this_thread::sleep_for(milliseconds(300));  // several quiet periods
    CHECK(sink.Count() == count);
    registry.Stop();  // idempotent
  }
  // Destroying a running registry stops it too.
  {
    FileRegistry registry(dir.path(), metrics, FastOptions());
    REQUIRE(registry.Run(sink.Callback()).ok());
  }
}

TEST_CASE("FileRegistry: directories renamed into place are watched", "[file_registry]") {
  TempDir dir;
  TempDir staging;
  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics, FastOptions());
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());
  CHECK(sink.Last()->services.empty());

  staging.Write("team/orders.yaml", ServiceYaml("orders", 80));
  REQUIRE(std::rename(staging.Path("team").c_str(), dir.Path("team").c_str()) == 0);
  auto s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 80; });
  REQUIRE(s != nullptr);
  dir.Write("team/orders.yaml", ServiceYaml("orders", 81));
  s = sink.WaitFor([](const MeshSnapshot& s) { return PortOf(s, "shop/orders") == 81; });
  REQUIRE(s != nullptr);

  // Moved out: its objects go.
  REQUIRE(std::rename(dir.Path("team").c_str(), staging.Path("gone").c_str()) == 0);
  s = sink.WaitFor([](const MeshSnapshot& s) { return s.services.empty(); });
  REQUIRE(s != nullptr);
}

}  // namespace
}  // namespace weft::discovery
