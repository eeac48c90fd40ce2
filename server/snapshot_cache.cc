#include "server/snapshot_cache.h"

namespace weft::server {

void SnapshotCache::SetSnapshot(const std::string& node_id, ProxySnapshotConstSharedPtr snapshot) {
  std::vector<std::shared_ptr<Watcher>> to_notify;
  {
    absl::MutexLock lock(&mu_);
    snapshots_[node_id] = snapshot;
    for (const auto& [id, entry] : watches_) {
      if (entry.node_id == node_id) to_notify.push_back(entry.watcher);
    }
  }
  for (const auto& w : to_notify) (*w)(snapshot);
}

ProxySnapshotConstSharedPtr SnapshotCache::GetSnapshot(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  auto it = snapshots_.find(node_id);
  return it == snapshots_.end() ? nullptr : it->second;
}

void SnapshotCache::ClearSnapshot(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  snapshots_.erase(node_id);
}

uint64_t SnapshotCache::Watch(const std::string& node_id, Watcher watcher) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_watch_id_++;
  watches_[id] = WatchEntry{node_id, std::make_shared<Watcher>(std::move(watcher))};
  return id;
}

void SnapshotCache::CancelWatch(uint64_t watch_id) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch_id);
}

}  // namespace weft::server
