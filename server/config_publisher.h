// Joins discovery to the cache: holds the current MeshSnapshot, compiles
// configuration for every connected node (once per distinct identity) and
// sets it in the SnapshotCache. The last good configuration of a node stays
// in force when compiling fails.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "discovery/mesh_snapshot.h"
#include "policy/compiler.h"
#include "policy/incremental.h"
#include "server/snapshot_cache.h"

namespace weft::server {

class ConfigPublisher {
 public:
  ConfigPublisher(SnapshotCache& cache, common::MetricsRegistry& metrics,
                  policy::CompilerOptions options = {});

  // A new mesh from discovery: recompile for every connected node.
  // `first_change` is when the oldest change it carries was seen.
  void OnMeshSnapshot(discovery::MeshSnapshotConstSharedPtr mesh,
                      std::chrono::steady_clock::time_point first_change = std::chrono::steady_clock::now());

  // A stream identified itself: make sure the cache holds its configuration.
  // Streams of one node are counted; the node is forgotten when the last
  // one disconnects.
  absl::Status ConnectNode(const std::string& node_id, const policy::ProxyIdentity& identity);
  void DisconnectNode(const std::string& node_id);

  discovery::MeshSnapshotConstSharedPtr mesh() const;

  // The CA's current trust bundle (PEM roots): every node gets it as the SDS
  // Secret "ROOTCA" (validation context). A new bundle is pushed at once.
  void SetTrustBundle(std::vector<std::string> roots_pem);
  // The bundle set last.
  std::vector<std::string> trust_bundle() const;
  // The validated policies of mesh(), built once per snapshot (statuses for
  // /api/v1/policies); null before the first snapshot.
  policy::PolicySetConstSharedPtr policies() const;

 private:
  struct Node {
    policy::ProxyIdentity identity;
    std::string key;  // identity.CacheKey()
    int streams = 0;
  };
  void ReleaseKeyLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  using SnapshotBatch = std::vector<std::pair<std::string, ProxySnapshotConstSharedPtr>>;
  // Sets the node's snapshot in the cache, or adds it to `batch` (stored
  // later at once, and its watchers called in parallel).
  // PublishLocked for every connected node, into one batch; a node that
  // fails keeps its last snapshot and is logged with `failure`.
  SnapshotBatch PublishAllLocked(std::map<std::string, ProxySnapshotConstSharedPtr>& memo,
                                 std::string_view failure) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PublishLocked(const std::string& node_id, const policy::ProxyIdentity& identity,
                             std::map<std::string, ProxySnapshotConstSharedPtr>& memo,
                             SnapshotBatch* batch = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  SnapshotCache& cache_;
  common::MetricsRegistry& metrics_;
  const policy::CompilerOptions options_;
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one OnMeshSnapshot/SetTrustBundle at a time
  mutable absl::Mutex mu_;
  discovery::MeshSnapshotConstSharedPtr mesh_ ABSL_GUARDED_BY(mu_);
  policy::PolicySetConstSharedPtr policies_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point mesh_changed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  // The last snapshot made per distinct configuration (identity cache key),
  // so that the next one shares unchanged types and records the change.
  std::map<std::string, ProxySnapshotConstSharedPtr> last_by_key_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> key_refs_ ABSL_GUARDED_BY(mu_);  // nodes per configuration key
  std::vector<std::string> trust_bundle_ ABSL_GUARDED_BY(mu_);
  uint64_t bundle_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::duration compiled_for_ ABSL_GUARDED_BY(mu_){};  // this mesh version's compiles
  std::map<std::string, uint64_t> last_generation_by_key_ ABSL_GUARDED_BY(mu_);
  // Set while mesh_ differs from the mesh of version impact_base_version_
  // only in endpoints (what an incremental compile rebuilds).
  std::optional<policy::EndpointImpact> impact_ ABSL_GUARDED_BY(mu_);
  uint64_t impact_base_version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace weft::server
