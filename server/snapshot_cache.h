// Per-node configuration snapshots and the watches on them. The xDS server
// reads and watches only this cache (go-control-plane's ConfigWatcher shape);
// the ConfigPublisher fills it. Watch callbacks run outside the cache's lock:
// in the thread that called SetSnapshot, or spread over the fan-out threads
// for Notify. A watcher is always given the node's snapshot current when it
// is called, so it never sees an older snapshot after a newer one, even when
// a SetSnapshot races a Notify.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/parallel.h"
#include "server/proxy_snapshot.h"

namespace weft::server {

class SnapshotCache {
 public:
  using Watcher = std::function<void(const ProxySnapshotConstSharedPtr&)>;

  // `fanout_threads`: how many threads Notify calls watchers on
  // (the caller's included).
  explicit SnapshotCache(size_t fanout_threads = 1);

  void SetSnapshot(const std::string& node_id, ProxySnapshotConstSharedPtr snapshot);
  // Many at once, in two steps, so that the caller can store under its own
  // lock and notify outside it (watchers may wait for proxies, see
  // PushWindow): Store sets the snapshots (each node at most once) and
  // returns their nodes; Notify calls those nodes' watchers, spread over
  // the fan-out threads, and returns when all calls have returned.
  std::vector<std::string> Store(
      const std::vector<std::pair<std::string, ProxySnapshotConstSharedPtr>>& snapshots);
  void Notify(const std::vector<std::string>& node_ids);
  // True inside a watcher called by Notify (on a fan-out thread): such a
  // watcher may wait, as it blocks none of gRPC's threads.
  static bool InFanout();
  // nullptr when none is set.
  ProxySnapshotConstSharedPtr GetSnapshot(const std::string& node_id) const;
  void ClearSnapshot(const std::string& node_id);

  // Calls `watcher` with every snapshot set for `node_id` from now on.
  // Returns an id for CancelWatch.
  uint64_t Watch(const std::string& node_id, Watcher watcher);
  // After it returns, the watcher is not called again (a call already running
  // in another thread may still finish).
  void CancelWatch(uint64_t watch_id);

 private:
  common::ParallelRunner fanout_;
  mutable absl::Mutex mu_;
  // Hashed: node ids share long prefixes, and every ACK and push looks one up.
  absl::flat_hash_map<std::string, ProxySnapshotConstSharedPtr> snapshots_ ABSL_GUARDED_BY(mu_);
  // node -> watch id -> watcher, and watch id -> node: O(log n) both ways.
  absl::flat_hash_map<std::string, std::map<uint64_t, std::shared_ptr<Watcher>>> watches_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> watch_nodes_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace weft::server
