// File mode (`weftd --registry=file --config-dir=DIR`): a Registry that reads
// every *.yaml, *.yml and *.json file below a directory (recursively, in
// sorted path order), builds MeshSnapshots from them, and watches the tree
// with inotify to publish a new snapshot whenever the content changes.
// After the first read only what the events name is read again: the files
// written, renamed or deleted, the directories that appeared or went (and
// every symlinked file, whose target can change unseen); an overflowing
// event queue makes it read everything again. The snapshot is the same as a
// full read of the directory would give (tests/discovery).
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
#include <memory>
#include <set>
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
  // snapshot and a file is not read half-written. Short: weftd's push
  // debouncer (20 ms quiet) is what coalesces changes, and every millisecond
  // here is added to change->ACK.
  std::chrono::milliseconds quiet_period{2};
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
  using ObjectsPtr = std::shared_ptr<const std::vector<MeshObject>>;
  // The parse of a file's content as of (inode, size, mtime): a file that a
  // full or directory rescan finds unchanged is not read or parsed again.
  struct CachedParse {
    uint64_t inode = 0;
    int64_t size = -1;
    int64_t mtime_ns = 0;
    std::shared_ptr<const ParsedManifest> parsed;
  };
  // One manifest file as of its last read.
  struct FileState {
    // What it contributes now: what it last produced successfully, document
    // by document. Shared with the cached parse when nothing was kept from
    // an earlier version. Null: nothing (yet).
    ObjectsPtr objects;
    std::vector<std::string> keys;  // MeshObjectKey() of each of `objects`
    std::vector<ConfigError> errors;
    CachedParse cache;  // parsed == nullptr: not cached
  };
  // What one reload changes, gathered while reading.
  struct Delta;

  absl::Status StartWatching();
  void AddWatches(const std::string& dir);
  void RemoveWatches(const std::string& dir);
  void WatchLoop();
  // Reads the pending inotify events, noting which files and directories
  // they name; true when any arrived.
  bool DrainEvents();
  // Re-reads what the events named (everything on the first call or after
  // an inotify queue overflow) and publishes a snapshot when the content
  // changed (always on the first call).
  void Reload();
  // The manifest files below `dir` (sorted) and the directories there that
  // could not be listed.
  ScanResult Scan(const std::string& dir) const;
  // Brings the state of the files below `dir` up to date with the disk.
  void RescanDir(const std::string& dir, Delta& delta);
  // Reads `file` again (when `force`, or when its inode, size or mtime
  // changed) and updates its state.
  void RefreshFile(const std::string& file, bool force, Delta& delta);
  void ForgetFile(const std::string& file, Delta& delta);
  void SetObjects(const std::string& file, FileState& state, ObjectsPtr objects, Delta& delta);
  bool UnderUnreadableDir(const std::string& path) const;
  // The object that defines `key` in the snapshot (the first definer's), or
  // null when no file defines it.
  const MeshObject* Definition(const std::string& key) const;
  // The snapshot of the current state: `base` (the previous one) with the
  // objects of `delta`'s keys replaced. Null when it is the same as `base`.
  std::shared_ptr<MeshSnapshot> BuildSnapshot(const MeshSnapshot& base, const Delta& delta);
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
  // What the events since the last reload named.
  bool rescan_all_ = true;
  std::set<std::string> dirty_files_;
  std::set<std::string> dirty_dirs_;
  // Directories that could not be watched: rescanned on every reload.
  std::set<std::string> unwatched_dirs_;
  // Every manifest file below the directory (and the files below directories
  // that cannot be listed now, which keep their last state), by path as shown
  // to users.
  std::map<std::string, FileState> files_;
  // The manifest-named symlinks below the directory, dangling or not: their
  // targets are checked on every reload.
  std::set<std::string> symlinks_;
  std::map<std::string, std::string> unreadable_dirs_;  // directory -> reason
  // MeshObjectKey -> the files that define it; the first defines it in the
  // snapshot, the others are duplicates.
  std::map<std::string, std::set<std::string>> definers_;
  // Keys defined more than once (in several files, or twice in one).
  std::set<std::string> duplicated_;
  // The snapshot built last (published unless it was a no-op); the base of
  // the next one.
  MeshSnapshotConstSharedPtr built_;
  // A private copy of built_, made once it has been delivered, so that the
  // next change patches it instead of copying the whole mesh on its way.
  std::unique_ptr<MeshSnapshot> spare_;

  mutable absl::Mutex mu_;
  MeshSnapshotConstSharedPtr current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::discovery
