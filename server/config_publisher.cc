#include "server/config_publisher.h"

#include "common/logging.h"

namespace weft::server {

ConfigPublisher::ConfigPublisher(SnapshotCache& cache, common::MetricsRegistry& metrics,
                                 policy::CompilerOptions options)
    : cache_(cache), metrics_(metrics), options_(std::move(options)) {}

void ConfigPublisher::OnMeshSnapshot(discovery::MeshSnapshotConstSharedPtr mesh) {
  absl::MutexLock lock(&mu_);
  mesh_ = std::move(mesh);
  std::map<std::string, ProxySnapshotConstSharedPtr> memo;
  for (const auto& [node_id, node] : nodes_) {
    absl::Status status = PublishLocked(node_id, node.identity, memo);
    if (!status.ok()) {
      WEFT_LOG(ERROR) << "keeping the last good configuration of " << node_id << ": " << status;
    }
  }
  WEFT_LOG(INFO) << "mesh version " << mesh_->version << ": " << mesh_->services.size()
                 << " services, " << mesh_->errors.size() << " config errors; pushed to "
                 << nodes_.size() << " nodes (" << memo.size() << " distinct configurations)";
}

absl::Status ConfigPublisher::ConnectNode(const std::string& node_id,
                                          const policy::ProxyIdentity& identity) {
  absl::MutexLock lock(&mu_);
  Node& node = nodes_[node_id];
  node.streams++;
  bool identity_changed = node.identity.CacheKey() != identity.CacheKey();
  node.identity = identity;
  if (!mesh_ || (!identity_changed && cache_.GetSnapshot(node_id) != nullptr)) {
    return absl::OkStatus();
  }
  std::map<std::string, ProxySnapshotConstSharedPtr> memo;
  return PublishLocked(node_id, identity, memo);
}

void ConfigPublisher::DisconnectNode(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  if (--it->second.streams <= 0) {
    nodes_.erase(it);
    cache_.ClearSnapshot(node_id);
  }
}

discovery::MeshSnapshotConstSharedPtr ConfigPublisher::mesh() const {
  absl::MutexLock lock(&mu_);
  return mesh_;
}

absl::Status ConfigPublisher::PublishLocked(
    const std::string& node_id, const policy::ProxyIdentity& identity,
    std::map<std::string, ProxySnapshotConstSharedPtr>& memo) {
  const std::string key = identity.CacheKey();
  auto it = memo.find(key);
  if (it == memo.end()) {
    auto resources = policy::Compile(*mesh_, policy::PolicySet{mesh_->version}, identity, options_);
    if (!resources.ok()) {
      metrics_.GetCounter("weft_compile_errors_total", "Configurations that failed to compile.").Inc();
      return resources.status();
    }
    auto snapshot = std::make_shared<ProxySnapshot>();
    snapshot->mesh_version = mesh_->version;
    snapshot->created = std::chrono::steady_clock::now();
    snapshot->resources = std::move(resources->resources);
    it = memo.emplace(key, std::move(snapshot)).first;
  }
  cache_.SetSnapshot(node_id, it->second);
  return absl::OkStatus();
}

}  // namespace weft::server
