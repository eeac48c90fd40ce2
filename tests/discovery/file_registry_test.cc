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
#include <iterator>
#include <mutex>
#include <random>
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

// A random manifest of one to three documents, drawn from few names so that
// files often define the same object (duplicates: the first path wins).
std::string RandomManifest(std::mt19937& rng) {
  static const char* const kNames[] = {"orders", "payments", "shipping", "cart", "search"};
  std::string text;
  const int docs = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < docs; ++i) {
    if (i > 0) text += "---\n";
    const std::string name = kNames[rng() % std::size(kNames)];
    if (rng() % 2 == 0) {
      text += ServiceYaml(name, 1 + static_cast<int>(rng() % 5));
    } else {
      text += WorkloadYaml(name + "-0", "10.0.0." + std::to_string(rng() % 5));
    }
  }
  return text;
}

// Waits up to 10 s for `registry`'s snapshot to have the content of `want`.
bool WaitForContent(const FileRegistry& registry, const MeshSnapshot& want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    MeshSnapshotConstSharedPtr s = registry.Current();
    if (s != nullptr && SameContent(*s, want)) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return false;
}

TEST_CASE("FileRegistry: reading only what the events name gives the snapshot of a full read",
          "[file_registry]") {
  TempDir dir;
  TempDir outside;  // staging for directories moved in, and where things moved out go
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  static const char* const kDirs[] = {"", "a/", "a/b/", "c/"};
  static const char* const kFiles[] = {"x.yaml", "y.yml", "z.json", "w.yaml"};
  auto random_file = [&] {
    return std::string(kDirs[rng() % std::size(kDirs)]) + kFiles[rng() % std::size(kFiles)];
  };
  // The files and directories below `dir` now, relative to it.
  auto list = [&](bool want_dirs) {
    std::vector<std::string> out;
    for (auto it = fs::recursive_directory_iterator(dir.path()); it != fs::recursive_directory_iterator();
         ++it) {
      const std::string rel = fs::relative(it->path(), dir.path()).string();
      if (rel.find("..") != std::string::npos) continue;  // inside the ConfigMap-style directory
      if (it->is_symlink() || it->is_directory() != want_dirs) continue;
      out.push_back(rel);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  int staged = 0;
  int generation = 0;
  // A ConfigMap volume: files are symlinks through `..data`, swapped atomically.
  auto configmap_swap = [&] {
    const std::string cm = dir.Path("cm");
    const std::string version = "..v" + std::to_string(++generation);
    // One time in three the key is gone from the new version: the link dangles.
    if (rng() % 3 == 0) {
      fs::create_directories(cm + "/" + version);
    } else {
      dir.Write("cm/" + version + "/routes.yaml", RandomManifest(rng));
    }
    fs::create_directory_symlink(version, cm + "/..data_tmp");
    REQUIRE(std::rename((cm + "/..data_tmp").c_str(), (cm + "/..data").c_str()) == 0);
    if (!fs::is_symlink(cm + "/routes.yaml")) fs::create_symlink("..data/routes.yaml", cm + "/routes.yaml");
  };

  dir.Write("x.yaml", RandomManifest(rng));
  dir.Write("a/y.yml", RandomManifest(rng));
  common::MetricsRegistry metrics;
  FileRegistry registry(dir.path(), metrics);  // the default (short) quiet period
  SnapshotSink sink;
  REQUIRE(registry.Run(sink.Callback()).ok());

  for (int step = 0; step < 120; ++step) {
    std::string what;
    const std::vector<std::string> files = list(false);
    const std::vector<std::string> dirs = list(true);
    switch (rng() % 10) {
      case 0:
      case 1: {  // write in place
        const std::string file = random_file();
        what = "write " + file;
        dir.Write(file, RandomManifest(rng));
        break;
      }
      case 2: {  // an editor's save
        const std::string file = random_file();
        what = "atomic write " + file;
        fs::create_directories(fs::path(dir.Path(file)).parent_path());
        dir.WriteAtomically(file, RandomManifest(rng));
        break;
      }
      case 3:  // delete a file
        if (files.empty()) continue;
        what = "delete " + files[rng() % files.size()];
        dir.Remove(what.substr(7));
        break;
      case 4: {  // rename a file (possibly over another, possibly to a name that is not read)
        if (files.empty()) continue;
        const std::string from = files[rng() % files.size()];
        // A broken file keeps the last good objects of the file it replaces,
        // which a fresh registry does not know.
        if (from.find("broken") != std::string::npos) continue;
        std::string to = random_file();
        if (rng() % 4 == 0) to = "notes.txt";
        what = "rename " + from + " -> " + to;
        fs::create_directories(fs::path(dir.Path(to)).parent_path());
        REQUIRE(std::rename(dir.Path(from).c_str(), dir.Path(to).c_str()) == 0);
        break;
      }
      case 5: {  // a directory with files appears (renamed into place, or created)
        const std::string name =
            std::string(kDirs[rng() % std::size(kDirs)]) + "new" + std::to_string(rng() % 3);
        if (fs::exists(dir.Path(name))) continue;
        what = "new directory " + name;
        const std::string staging = "staged" + std::to_string(++staged);
        outside.Write(staging + "/one.yaml", RandomManifest(rng));
        outside.Write(staging + "/deeper/two.yaml", RandomManifest(rng));
        fs::create_directories(fs::path(dir.Path(name)).parent_path());
        REQUIRE(std::rename(outside.Path(staging).c_str(), dir.Path(name).c_str()) == 0);
        break;
      }
      case 6: {  // a directory goes (moved out, or deleted), or moves within the tree
        if (dirs.empty()) continue;
        const std::string victim = dirs[rng() % dirs.size()];
        if (victim == "cm") continue;
        const int how = static_cast<int>(rng() % 3);
        if (how == 0) {
          what = "move out " + victim;
          REQUIRE(std::rename(dir.Path(victim).c_str(),
                              outside.Path("gone" + std::to_string(++staged)).c_str()) == 0);
        } else if (how == 1) {
          what = "delete directory " + victim;
          fs::remove_all(dir.Path(victim));
        } else {
          const std::string to = "moved" + std::to_string(++staged);
          what = "move " + victim + " -> " + to;
          REQUIRE(std::rename(dir.Path(victim).c_str(), dir.Path(to).c_str()) == 0);
        }
        break;
      }
      case 7:  // files that are not manifests: nothing changes
        what = "not manifests";
        dir.Write(".hidden.yaml", RandomManifest(rng));
        dir.Write("a/notes.txt", RandomManifest(rng));
        break;
      case 8:  // a file that never parses (its error, in file order)
        what = "broken file";
        dir.Write(std::string(kDirs[rng() % std::size(kDirs)]) + "broken.yaml", "kind: [unclosed\n");
        break;
      case 9:
        what = "ConfigMap-style swap";
        configmap_swap();
        break;
    }
    // A fresh registry reads everything: the reference.
    common::MetricsRegistry fresh_metrics;
    FileRegistry fresh(dir.path(), fresh_metrics);
    SnapshotSink fresh_sink;
    REQUIRE(fresh.Run(fresh_sink.Callback()).ok());
    MeshSnapshotConstSharedPtr want = fresh.Current();
    fresh.Stop();
    INFO("step " << step << ": " << what);
    REQUIRE(WaitForContent(registry, *want));
  }
  CHECK(sink.VersionsConsecutive());
  registry.Stop();
}

}  // namespace
}  // namespace weft::discovery
