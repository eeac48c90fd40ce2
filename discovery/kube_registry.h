// Kubernetes mode (`weftd --registry=kubernetes`): a Registry that watches
// the kinds of DESIGN.md §4 through the API server (one KubeWatcher each)
// and gathers them into MeshSnapshots exactly as file mode does from a
// directory: the same objects give the same snapshot (objects' SourceRef is
// {"", -1}, shown as "kubernetes"). Changes are debounced into one snapshot.
//
// Last good state wins: an object that stops decoding keeps its last good
// version, its error goes into MeshSnapshot::errors, and (weft.io kinds) it
// gets the status condition Accepted=False with the field path; when it
// decodes again the condition returns to Accepted=True.
//
// The registry is the one writer of the statuses Weft owns (KubeStatusWriter):
// decode errors, and, with `policy_verdicts`, what the policy validator says
// about the policy documents of a published snapshot (ReportVerdicts()):
// Accepted for the weft.io policies, status.parents for HTTPRoutes. A status
// is written only when the object (as last seen through the watch) does not
// already say it, for the generation it is about, so writes do not storm.
//
// --namespace-selector=LABEL=VALUE: like Istio's discoverySelectors, only
// namespaces carrying the label (and the objects in them) enter the
// snapshot; a namespace gaining or losing the label brings its objects in or
// out. Everything is still listed and watched cluster-wide.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "discovery/kube_backoff.h"
#include "discovery/kube_client.h"
#include "discovery/kube_resource.h"
#include "discovery/kube_status_writer.h"
#include "discovery/kube_watcher.h"
#include "discovery/mesh_object.h"
#include "discovery/registry.h"

namespace weft::discovery {

struct KubeRegistryOptions {
  // "LABEL=VALUE"; "" selects every namespace.
  std::string namespace_selector;
  // Changes are published once the watches have been quiet this long (so
  // that a burst of watch events builds one MeshSnapshot; weftd's push
  // debouncer, 20 ms quiet, coalesces further, and every millisecond here is
  // added to change->ACK)...
  std::chrono::milliseconds quiet_period{10};
  // ...or at the latest this long after the first unpublished change.
  std::chrono::milliseconds max_delay{1000};
  // Run() fails when the kinds have not all been listed by then (a type
  // whose CRD is missing counts as listed, empty).
  std::chrono::milliseconds initial_sync_timeout{30000};
  KubeWatcherOptions watcher;
  // Write the statuses Weft owns (see above).
  bool write_status = true;
  // Policy documents (HTTPRoute, the weft.io policies) get their status
  // from ReportVerdicts() instead of Accepted=True once they decode.
  bool policy_verdicts = false;
  // The watched types; tests may narrow them.
  std::vector<KubeResource> resources = WatchedKubeResources();
};

class KubeRegistry : public Registry, public KubeWatchSink {
 public:
  // No I/O here. `client` outlives the registry.
  KubeRegistry(KubeClient& client, common::MetricsRegistry& metrics, KubeRegistryOptions options = {},
               common::Clock& clock = common::RealClock::Get());
  ~KubeRegistry() override;  // Stop()s

  KubeRegistry(const KubeRegistry&) = delete;
  KubeRegistry& operator=(const KubeRegistry&) = delete;

  // Starts the watchers, waits for every kind's first list, delivers the
  // first snapshot (version 1) and returns; later snapshots come from a
  // background thread. Fails on a bad --namespace-selector and when the API
  // server cannot be listed within initial_sync_timeout (the message names
  // the server and the last error).
  absl::Status Run(SnapshotCallback on_snapshot) override;
  // Stops the watchers and joins every thread; no callback after it returns.
  // Shuts the client down (it serves no one else afterwards).
  void Stop() override;

  MeshSnapshotConstSharedPtr Current() const;

  // What the policy validator concluded about the policy documents of the
  // snapshot `version` (keyed MeshObjectKey). Ignored when a newer snapshot
  // has been published meanwhile (its own verdicts follow). Thread-safe.
  void ReportVerdicts(uint64_t version, std::map<std::string, KubeObjectVerdict> verdicts);

 private:
  struct Entry {
    const KubeResource* resource = nullptr;
    std::string ns;
    std::string name;
    std::optional<MeshObject> good;   // the last version that decoded
    std::vector<ConfigError> errors;  // why the current version does not
    int64_t generation = 0;           // metadata.generation now
    int64_t good_generation = 0;      // of `good`
    nlohmann::json status;            // the object's status as last seen
  };

  // KubeWatchSink, called from the watcher threads.
  void OnObject(const KubeResource& resource, KubeEventType type, const std::string& key,
                const nlohmann::json& object) override;
  void OnSynced(const KubeResource& resource) override;
  void OnListFailed(const KubeResource& resource, const absl::Status& status) override;

  // The status the object of `key` should carry now, if Weft knows it yet.
  std::optional<KubeObjectVerdict> WantedStatusLocked(const std::string& key, const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MeshSnapshot BuildLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish();
  void PublishLoop();
  void WriteStatuses();

  KubeClient& client_;
  common::MetricsRegistry& metrics_;
  const KubeRegistryOptions options_;
  common::Clock& clock_;
  KubeStatusWriter status_writer_;
  RealSleeper sleeper_;
  std::string selector_label_, selector_value_;
  common::Gauge& errors_gauge_;

  SnapshotCallback on_snapshot_;
  bool started_ = false;
  std::vector<std::unique_ptr<KubeWatcher>> watchers_;
  std::vector<std::thread> threads_;
  std::thread publisher_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);  // MeshObjectKey -> entry
  std::map<std::string, bool> synced_ ABSL_GUARDED_BY(mu_);    // kind -> listed (or not served)
  std::map<std::string, std::string> last_error_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point first_change_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_change_ ABSL_GUARDED_BY(mu_);
  // Objects whose status is to be checked (by MeshObjectKey).
  std::set<std::string> status_dirty_ ABSL_GUARDED_BY(mu_);
  // The generation of every object in current_, and the validator's
  // verdicts on current_ (empty until reported).
  std::map<std::string, int64_t> published_generations_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, KubeObjectVerdict> verdicts_ ABSL_GUARDED_BY(mu_);
  common::Counter& status_writes_;
  common::Counter& status_write_errors_;
  MeshSnapshotConstSharedPtr current_ ABSL_GUARDED_BY(mu_);
};

// Parses "LABEL=VALUE" (for --namespace-selector).
absl::Status ParseNamespaceSelector(const std::string& text, std::string* label, std::string* value);

}  // namespace weft::discovery
