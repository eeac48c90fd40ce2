#include "server/proxy_tracker.h"

#include <algorithm>

namespace weft::server {

void ProxyTracker::Add(uint64_t stream_id, StatusReader read) {
  absl::MutexLock lock(&mu_);
  streams_[stream_id] = std::move(read);
}

void ProxyTracker::Remove(uint64_t stream_id) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream_id);
}

std::vector<ProxyStatus> ProxyTracker::List() const {
  std::vector<ProxyStatus> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, read] : streams_) out.push_back(read());
  }
  std::sort(out.begin(), out.end(), [](const ProxyStatus& a, const ProxyStatus& b) {
    return std::tie(a.node_id, a.stream_id) < std::tie(b.node_id, b.stream_id);
  });
  return out;
}

std::optional<ProxyStatus> ProxyTracker::Find(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  std::optional<ProxyStatus> found;
  for (const auto& [id, read] : streams_) {
    ProxyStatus s = read();
    if (s.node_id == node_id) found = std::move(s);  // ids increase: the last is the newest
  }
  return found;
}

size_t ProxyTracker::Count() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

std::string SyncState(const TypeState& state) {
  if (state.nacked) return "NACKED";
  // Nothing known to be held yet (no response sent and no prior state), a
  // response outstanding, or the last one not accepted: not in sync.
  if ((state.sent_nonce.empty() && !state.sent.base) || state.awaiting_ack ||
      state.acked_version != state.sent_version) {
    return "STALE";
  }
  return "SYNCED";
}

}  // namespace weft::server
