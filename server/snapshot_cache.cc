#include "server/snapshot_cache.h"

namespace weft::server {
namespace {

thread_local bool in_fanout = false;

}  // namespace

bool SnapshotCache::InFanout() { return in_fanout; }

SnapshotCache::SnapshotCache(size_t fanout_threads) : fanout_(fanout_threads) {}

std::vector<std::string> SnapshotCache::Store(
    const std::vector<std::pair<std::string, ProxySnapshotConstSharedPtr>>& snapshots) {
  std::vector<std::string> nodes;
  nodes.reserve(snapshots.size());
  absl::MutexLock lock(&mu_);
  for (const auto& [node_id, snapshot] : snapshots) {
    snapshots_[node_id] = snapshot;
    nodes.push_back(node_id);
  }
  return nodes;
}

void SnapshotCache::Notify(const std::vector<std::string>& node_ids) {
  std::vector<std::pair<std::shared_ptr<Watcher>, ProxySnapshotConstSharedPtr>> to_notify;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& node_id : node_ids) {
      auto snapshot = snapshots_.find(node_id);
      auto it = watches_.find(node_id);
      if (snapshot == snapshots_.end() || it == watches_.end()) continue;  // gone meanwhile
      for (const auto& [id, watcher] : it->second) to_notify.emplace_back(watcher, snapshot->second);
    }
  }
  fanout_.Run(to_notify.size(), [&](size_t i) {
    in_fanout = true;
    (*to_notify[i].first)(to_notify[i].second);
    in_fanout = false;
  });
}

void SnapshotCache::SetSnapshot(const std::string& node_id, ProxySnapshotConstSharedPtr snapshot) {
  std::vector<std::shared_ptr<Watcher>> to_notify;
  {
    absl::MutexLock lock(&mu_);
    snapshots_[node_id] = snapshot;
    if (auto it = watches_.find(node_id); it != watches_.end()) {
      for (const auto& [id, watcher] : it->second) to_notify.push_back(watcher);
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
  watches_[node_id][id] = std::make_shared<Watcher>(std::move(watcher));
  watch_nodes_[id] = node_id;
  return id;
}

void SnapshotCache::CancelWatch(uint64_t watch_id) {
  absl::MutexLock lock(&mu_);
  auto node = watch_nodes_.find(watch_id);
  if (node == watch_nodes_.end()) return;
  auto it = watches_.find(node->second);
  if (it != watches_.end()) {
    it->second.erase(watch_id);
    if (it->second.empty()) watches_.erase(it);
  }
  watch_nodes_.erase(node);
}

}  // namespace weft::server
