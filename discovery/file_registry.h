// File mode (`weftd --registry=file --config-dir=DIR`): a Registry that reads
// every *.yaml, *.yml and *.json file below a directory (recursively, in
// sorted path order), builds MeshSnapshots from them, and watches the tree
// with inotify to publish a new snapshot whenever the content changes.
//
// Last good state wins: when a file or a document in it turns invalid, the
// error goes into MeshSnapshot::errors and the objects the file last produced
// successfully stay in force; deleting a file removes its objects. Hidden
// files and directories and `tokens.yaml` (the CA's file-mode tokens) are not
// manifests and are skipped.
//
// Metrics: gauge weft_config_errors (errors in the current state), counter
// weft_config_reloads_total{result="ok|error"} (one per re-read).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "discovery/mesh_snapshot.h"
#include "discovery/registry.h"

namespace weft::discovery {

struct FileRegistryOptions {
  // Changes are read once the directory has been quiet this long, so that
  // an editor's burst of events (write temp file, rename, chmod) makes one
  // snapshot. Short: weftd's push debouncer (20 ms quiet) is what coalesces
  // changes, and every millisecond here is added to change->ACK.
  std::chrono::milliseconds quiet_period{5};
  // Upper bound on the wait while events keep arriving.
  std::chrono::milliseconds max_delay{1000};
  // Larger files are rejected with an error.
  size_t max_file_bytes = 16 << 20;
};

class FileRegistry : public Registry {
 public:
  // No I/O here; Run() reads the directory.
  FileRegistry(std::string config_dir, common::MetricsRegistry& metrics, FileRegistryOptions options = {});
  ~FileRegistry() override;  // Stop()s

  FileRegistry(const FileRegistry&) = delete;
  FileRegistry& operator=(const FileRegistry&) = delete;

  // Fails, naming the directory, when it is missing or unreadable, or when
  // it cannot be watched. Otherwise delivers the first snapshot (version 1,
  // possibly with errors) through `on_snapshot` before returning, then
  // delivers each changed snapshot from a background thread. Call once.
  absl::Status Run(SnapshotCallback on_snapshot) override;

  // Stops watching and joins the background thread: no callback runs after
  // it returns. Must not be called from the callback itself.
  void Stop() override;

  // The snapshot delivered last; nullptr before Run().
  MeshSnapshotConstSharedPtr Current() const;

 private:
  struct ScanResult;

  absl::Status StartWatching();
  void AddWatches(const std::string& dir);
  void RemoveWatches(const std::string& dir);
  void WatchLoop();
  // Reads the pending inotify events; true when any arrived.
  bool DrainEvents();
  // Re-reads the directory and publishes a snapshot when the content changed
  // (always on the first call).
  void Reload();
  ScanResult Scan() const;
  void CloseFds();

  const std::string config_dir_;
  const FileRegistryOptions options_;
  common::Gauge& errors_gauge_;
  common::Counter& reloads_ok_;
  common::Counter& reloads_error_;

  SnapshotCallback on_snapshot_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the watch loop through it

  // Owned by Run() until the watch thread starts, then by that thread alone.
  std::map<int, std::string> watches_;  // watch descriptor -> directory
  // Per file (path as shown to users), the objects it currently contributes:
  // what it last produced successfully, document by document.
  // Shared with parse_cache_ when nothing was kept from an earlier version,
  // so that an unchanged file costs a pointer copy per reload.
  using ObjectsPtr = std::shared_ptr<const std::vector<MeshObject>>;
  std::map<std::string, ObjectsPtr> file_objects_;
  // Per file, the parse of its content as of (inode, size, mtime): an
  // unchanged file is not read or parsed again on the next reload, so a
  // change to one file of a thousand costs one parse.
  struct CachedParse {
    uint64_t inode = 0;
    int64_t size = -1;
    int64_t mtime_ns = 0;
    std::shared_ptr<const ParsedManifest> parsed;
  };
  std::map<std::string, CachedParse> parse_cache_;

  mutable absl::Mutex mu_;
  MeshSnapshotConstSharedPtr current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::discovery
