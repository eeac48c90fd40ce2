// What every connected proxy holds: the admin API's view of the xDS
// streams. Each stream registers a function that reads its state (under the
// stream's own lock), called only when someone asks: the streams' hot path
// never copies its state or takes a shared lock for the admin API.
#pragma once

#include <functional>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "policy/proxy_resources.h"
#include "server/sotw_stream.h"

namespace weft::server {

struct ProxyStatus {
  uint64_t stream_id = 0;
  std::string node_id;
  std::string user_agent;
  std::string peer;
  policy::ProxyIdentity identity;
  std::string protocol = "sotw";  // "sotw" or "delta"
  std::chrono::system_clock::time_point connected_at{};
  std::map<std::string, TypeState> types;  // by type URL
  // Convergence: the newest mesh version whose changes this proxy has
  // ACKed in full, and when.
  uint64_t applied_mesh_version = 0;
  std::chrono::system_clock::time_point applied_at{};
};

class ProxyTracker {
 public:
  using StatusReader = std::function<ProxyStatus()>;
  // `read` is called, with this tracker's lock held, until Remove returns.
  void Add(uint64_t stream_id, StatusReader read);
  void Remove(uint64_t stream_id);
  std::vector<ProxyStatus> List() const;  // sorted by node id, then stream id
  // The newest stream of a node, if connected.
  std::optional<ProxyStatus> Find(const std::string& node_id) const;
  size_t Count() const;

 private:
  mutable absl::Mutex mu_;
  std::map<uint64_t, StatusReader> streams_ ABSL_GUARDED_BY(mu_);
};

// "SYNCED" (the client accepted what was last sent), "STALE" (a response is
// outstanding or nothing was sent yet) or "NACKED".
std::string SyncState(const TypeState& state);

}  // namespace weft::server
