#include "server/config_publisher.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "policy/incremental.h"
#include "policy/resource_types.h"

namespace weft::server {
namespace {

constexpr char kCompilesHelp[] =
    "Configurations compiled, whole (full) or only the clusters an endpoint change touched (incremental).";

}  // namespace

ConfigPublisher::ConfigPublisher(SnapshotCache& cache, common::MetricsRegistry& metrics,
                                 policy::CompilerOptions options)
    : cache_(cache), metrics_(metrics), options_(std::move(options)) {}

void ConfigPublisher::OnMeshSnapshot(discovery::MeshSnapshotConstSharedPtr mesh,
                                     std::chrono::steady_clock::time_point first_change) {
  // One publish at a time; mu_ is held only to compile and store, not while
  // the streams are told (they may wait for proxies' answers, and a stream
  // connecting meanwhile needs mu_ on a gRPC thread).
  absl::MutexLock publish(&publish_mu_);
  mu_.Lock();
  const auto start = std::chrono::steady_clock::now();
  discovery::MeshSnapshotConstSharedPtr before = std::move(mesh_);
  mesh_ = std::move(mesh);
  // Validated once per snapshot; every node's compile shares it. When only
  // endpoints changed, the policies carry over and nodes are compiled
  // incrementally from their last snapshot of `before`.
  impact_.reset();
  std::optional<discovery::EndpointChange> change;
  if (before != nullptr && policies_ != nullptr && options_.incremental) {
    change = discovery::EndpointsOnlyChange(*before, *mesh_);
  }
  if (change) {
    impact_ = policy::ImpactOf(*before, *mesh_, *change);
    impact_base_version_ = before->version;
    policies_ = policy::CarryOverPolicies(*policies_, *mesh_, *impact_, options_);
  } else {
    policies_ = policy::ValidatePolicies(*mesh_, options_);
  }
  const auto validated = std::chrono::steady_clock::now();
  mesh_changed_ = first_change;
  compiled_for_ = {};
  std::map<std::string, ProxySnapshotConstSharedPtr> memo;
  const std::vector<std::string> to_notify =
      cache_.Store(PublishAllLocked(memo, "keeping the last good configuration of "));
  const auto stored = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0; };
  const std::string summary = absl::StrCat(
      "mesh version ", mesh_->version, ": ", mesh_->services.size(), " services, ", mesh_->errors.size(),
      " config errors; pushed to ", nodes_.size(), " nodes (", memo.size(), " distinct configurations",
      impact_ ? absl::StrCat(", endpoints of ", impact_->services.size(), " services changed") : "", "; ",
      ms(start - first_change), " ms since the change, validated in ", ms(validated - start),
      " ms, compiled in ", ms(compiled_for_), " ms");
  mu_.Unlock();
  cache_.Notify(to_notify);
  WEFT_LOG(INFO) << summary << ", queued to the streams in " << ms(std::chrono::steady_clock::now() - stored)
                 << " ms)";
}

void ConfigPublisher::SetTrustBundle(std::vector<std::string> roots_pem) {
  absl::MutexLock publish(&publish_mu_);
  std::vector<std::string> to_notify;
  size_t roots = 0;
  {
    absl::MutexLock lock(&mu_);
    if (roots_pem == trust_bundle_) return;
    trust_bundle_ = std::move(roots_pem);
    bundle_generation_++;
    if (!mesh_) return;
    std::map<std::string, ProxySnapshotConstSharedPtr> memo;
    to_notify = cache_.Store(PublishAllLocked(memo, "trust bundle not pushed to "));
    roots = trust_bundle_.size();
  }
  cache_.Notify(to_notify);
  WEFT_LOG(INFO) << "trust bundle (" << roots << " roots) pushed to " << to_notify.size()
                 << " nodes as SDS Secret ROOTCA";
}

std::vector<std::string> ConfigPublisher::trust_bundle() const {
  absl::MutexLock lock(&mu_);
  return trust_bundle_;
}

absl::Status ConfigPublisher::ConnectNode(const std::string& node_id, const policy::ProxyIdentity& identity) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = nodes_.try_emplace(node_id);
  Node& node = it->second;
  node.streams++;
  const std::string key = identity.CacheKey();
  bool identity_changed = inserted || node.key != key;
  if (identity_changed) {
    if (!inserted) ReleaseKeyLocked(node.key);
    key_refs_[key]++;
  }
  node.identity = identity;
  node.key = key;
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
    ReleaseKeyLocked(it->second.key);
    nodes_.erase(it);
    cache_.ClearSnapshot(node_id);
  }
}

void ConfigPublisher::ReleaseKeyLocked(const std::string& key) {
  auto it = key_refs_.find(key);
  if (it == key_refs_.end()) return;
  if (--it->second <= 0) {
    key_refs_.erase(it);
    last_by_key_.erase(key);  // no node has this configuration any more
    last_generation_by_key_.erase(key);
  }
}

discovery::MeshSnapshotConstSharedPtr ConfigPublisher::mesh() const {
  absl::MutexLock lock(&mu_);
  return mesh_;
}

policy::PolicySetConstSharedPtr ConfigPublisher::policies() const {
  absl::MutexLock lock(&mu_);
  return policies_;
}

ConfigPublisher::SnapshotBatch ConfigPublisher::PublishAllLocked(
    std::map<std::string, ProxySnapshotConstSharedPtr>& memo, std::string_view failure) {
  SnapshotBatch batch;
  for (const auto& [node_id, node] : nodes_) {
    absl::Status status = PublishLocked(node_id, node.identity, memo, &batch);
    if (!status.ok()) WEFT_LOG(ERROR) << failure << node_id << ": " << status;
  }
  return batch;
}

absl::Status ConfigPublisher::PublishLocked(const std::string& node_id, const policy::ProxyIdentity& identity,
                                            std::map<std::string, ProxySnapshotConstSharedPtr>& memo,
                                            SnapshotBatch* batch) {
  const std::string key = identity.CacheKey();
  auto it = memo.find(key);
  if (it == memo.end()) {
    // Another node with the same configuration key already has this mesh
    // version compiled: share it (a thousand proxies connecting compile once).
    auto last = last_by_key_.find(key);
    if (last != last_by_key_.end() && last->second->mesh_version == mesh_->version &&
        last_generation_by_key_[key] == bundle_generation_) {
      it = memo.emplace(key, last->second).first;
    }
  }
  if (it == memo.end() && impact_ && !impact_->AffectsWhole(identity)) {
    // An endpoint-only change: the clusters of the impacted services, patched
    // into this configuration's snapshot of the mesh before.
    auto last = last_by_key_.find(key);
    if (last != last_by_key_.end() && last->second->mesh_version == impact_base_version_ &&
        last_generation_by_key_[key] == bundle_generation_) {
      const auto compile_start = std::chrono::steady_clock::now();
      policy::ProxyResources clusters =
          policy::CompileImpactedClusters(*mesh_, *policies_, identity, *impact_, options_);
      ProxySnapshotConstSharedPtr snapshot =
          PatchProxySnapshot(*last->second, std::move(clusters.resources), mesh_->version, mesh_changed_);
      compiled_for_ += std::chrono::steady_clock::now() - compile_start;
      metrics_.GetCounter("weft_compiles_total", kCompilesHelp, {{"mode", "incremental"}}).Inc();
      last->second = snapshot;
      it = memo.emplace(key, std::move(snapshot)).first;
    }
  }
  if (it == memo.end()) {
    const auto compile_start = std::chrono::steady_clock::now();
    auto resources = policy::Compile(*mesh_, *policies_, identity, options_);
    metrics_.GetCounter("weft_compiles_total", kCompilesHelp, {{"mode", "full"}}).Inc();
    if (!resources.ok()) {
      metrics_.GetCounter("weft_compile_errors_total", "Configurations that failed to compile.").Inc();
      return resources.status();
    }
    if (!trust_bundle_.empty()) {
      // The mesh trust bundle, for validating peers (never a private key:
      // workload certificates stay with the proxies that made them).
      envoy::extensions::transport_sockets::tls::v3::Secret rootca;
      rootca.set_name("ROOTCA");
      std::string bundle;
      for (const auto& pem : trust_bundle_) bundle += pem;
      rootca.mutable_validation_context()->mutable_trusted_ca()->set_inline_string(bundle);
      resources->Add(rootca, "ROOTCA", {"ca:trust-bundle"});
    }
    compiled_for_ += std::chrono::steady_clock::now() - compile_start;
    auto last = last_by_key_.find(key);
    ProxySnapshotConstSharedPtr snapshot =
        MakeProxySnapshot(std::move(resources->resources), mesh_->version, mesh_changed_,
                          last == last_by_key_.end() ? nullptr : last->second.get());
    last_by_key_[key] = snapshot;
    last_generation_by_key_[key] = bundle_generation_;
    it = memo.emplace(key, std::move(snapshot)).first;
  }
  if (batch != nullptr) {
    batch->emplace_back(node_id, it->second);
  } else {
    cache_.SetSnapshot(node_id, it->second);
  }
  return absl::OkStatus();
}

}  // namespace weft::server
