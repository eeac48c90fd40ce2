// KubeWatcher: keeps an up-to-date copy of one Kubernetes resource type, the
// way client-go's reflector does. A paginated list (limit/continue), then a
// watch from the list's resourceVersion with allowWatchBookmarks=true and
// timeoutSeconds; after a dropped or ended stream it resumes from the last
// version seen (bookmarks advance it); on 410 Gone (HTTP status or an ERROR
// event with code 410) it lists again and reports only the difference.
// Errors back off exponentially with jitter; a type the server does not
// serve (404: its CRD is not installed) is a warning and is retried.
//
// The stream is newline-delimited JSON; events may arrive split across
// chunks or several in one chunk. Malformed events are logged, counted and
// end the stream (which then resumes); they never crash.
//
// Owned and run by KubeRegistry, one thread each. Metrics (label kind):
// weft_kube_watch_restarts_total, weft_kube_relists_total,
// weft_kube_events_total{type}, weft_kube_last_sync_timestamp_seconds.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "discovery/kube_backoff.h"
#include "discovery/kube_client.h"
#include "discovery/kube_resource.h"

namespace weft::discovery {

enum class KubeEventType { kAdded, kModified, kDeleted };

// Receives what a KubeWatcher learns. Called from the watcher's thread.
class KubeWatchSink {
 public:
  virtual ~KubeWatchSink() = default;
  // `object` carries apiVersion and kind; `key` is "namespace/name" (or
  // "name" when cluster-scoped).
  virtual void OnObject(const KubeResource& resource, KubeEventType type, const std::string& key,
                        const nlohmann::json& object) = 0;
  // A list completed: the watcher's copy equals the server's state.
  virtual void OnSynced(const KubeResource& resource) = 0;
  // A list failed; NotFound when the type is not served (no CRD).
  virtual void OnListFailed(const KubeResource& resource, const absl::Status& status) = 0;
};

struct KubeWatcherOptions {
  int page_size = 500;
  // timeoutSeconds of each watch request; the server ends the stream then
  // and the watcher resumes. A read that sees no byte for this long plus
  // `read_grace` counts as a broken connection.
  std::chrono::seconds watch_timeout{300};
  std::chrono::seconds read_grace{30};
  BackoffPolicy backoff;
  uint64_t backoff_seed = 0;  // 0: random
};

class KubeWatcher {
 public:
  // No I/O here.
  KubeWatcher(KubeClient& client, KubeResource resource, KubeWatchSink& sink, Sleeper& sleeper,
              common::MetricsRegistry& metrics, common::Clock& clock, KubeWatcherOptions options = {});

  // Lists and watches until Stop(); call on a thread of its own.
  void Run();
  // Makes Run() return soon; the owner also shuts the client down and
  // interrupts the sleeper so that nothing blocks.
  void Stop() { stopping_ = true; }

  const KubeResource& resource() const { return resource_; }

  // The outcome of one watch request (exposed for tests).
  enum class WatchEnd { kClosed, kGone, kError };

 private:
  // Lists every page and replaces the copy, reporting the difference.
  absl::Status ListAndReplace();
  WatchEnd WatchOnce(int* events);
  // One complete line of the stream; false ends the stream with `*end`.
  bool HandleLine(std::string_view line, WatchEnd* end, int* events);
  void Emit(KubeEventType type, const std::string& key, const nlohmann::json& object);
  void MarkSynced();

  KubeClient& client_;
  const KubeResource resource_;
  KubeWatchSink& sink_;
  Sleeper& sleeper_;
  common::Clock& clock_;
  const KubeWatcherOptions options_;
  Backoff backoff_;
  std::atomic<bool> stopping_{false};

  // Owned by the Run() thread.
  std::map<std::string, nlohmann::json> store_;  // key -> object
  std::string resource_version_;
  bool warned_not_served_ = false;

  common::Counter& restarts_;
  common::Counter& relists_;
  common::Counter& added_;
  common::Counter& modified_;
  common::Counter& deleted_;
  common::Counter& bookmarks_;
  common::Counter& errors_;
  common::Gauge& last_sync_;
};

// "namespace/name" or "name" from an object's metadata; "" when it has no name.
std::string KubeObjectKey(const nlohmann::json& object);

// The Status for a non-2xx API response: NotFound for 404, OutOfRange for
// 410, PermissionDenied for 401/403, Unavailable otherwise; the message
// names the request and quotes the server's Status message.
absl::Status KubeHttpError(const std::string& what, const KubeResponse& response);

}  // namespace weft::discovery
