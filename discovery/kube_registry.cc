#include "discovery/kube_registry.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "discovery/object_decoder.h"

namespace weft::discovery {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr char kInvalidReason[] = "Invalid";
constexpr char kAcceptedReason[] = "Accepted";

std::string Summary(const MeshSnapshot& s) {
  return absl::StrCat(s.services.size(), " services, ", s.endpoint_slices.size(), " endpoint slices, ",
                      s.workloads.size(), " workloads, ", s.pods.size(), " pods, ", s.namespaces.size(),
                      " namespaces, ", s.policies.size(), " policies, ", s.errors.size(), " errors");
}

std::string ErrorsMessage(const std::vector<ConfigError>& errors) {
  std::vector<std::string> parts;
  for (const ConfigError& e : errors) {
    parts.push_back(e.field.empty() ? e.reason : absl::StrCat(e.field, ": ", e.reason));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace

absl::Status ParseNamespaceSelector(const std::string& text, std::string* label, std::string* value) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || text.find('=', eq + 1) != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--namespace-selector: \"", text, "\" is not LABEL=VALUE"));
  }
  *label = text.substr(0, eq);
  *value = text.substr(eq + 1);
  return absl::OkStatus();
}

KubeRegistry::KubeRegistry(KubeClient& client, common::MetricsRegistry& metrics, KubeRegistryOptions options,
                           common::Clock& clock)
    : client_(client),
      metrics_(metrics),
      options_(std::move(options)),
      clock_(clock),
      status_writer_(client, clock),
      errors_gauge_(metrics.GetGauge("weft_config_errors",
                                     "Problems in the configuration now (invalid files, documents, objects)")) {}

KubeRegistry::~KubeRegistry() { Stop(); }

absl::Status KubeRegistry::Run(SnapshotCallback on_snapshot) {
  if (started_) return absl::FailedPreconditionError("KubeRegistry::Run called twice");
  started_ = true;
  if (!options_.namespace_selector.empty()) {
    absl::Status parsed = ParseNamespaceSelector(options_.namespace_selector, &selector_label_, &selector_value_);
    if (!parsed.ok()) return parsed;
  }
  on_snapshot_ = std::move(on_snapshot);
  for (const KubeResource& resource : options_.resources) {
    watchers_.push_back(
        std::make_unique<KubeWatcher>(client_, resource, *this, sleeper_, metrics_, clock_, options_.watcher));
  }
  for (auto& watcher : watchers_) {
    KubeWatcher* w = watcher.get();
    threads_.emplace_back([w] { w->Run(); });
  }

  // Wait for every kind's first list.
  const size_t kinds = options_.resources.size();
  auto all_synced = [this, kinds]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || synced_.size() == kinds;
  };
  bool synced;
  {
    absl::MutexLock lock(&mu_);
    synced = mu_.AwaitWithTimeout(absl::Condition(&all_synced), absl::FromChrono(options_.initial_sync_timeout)) &&
             !stopping_;
  }
  if (!synced) {
    std::string detail;
    {
      absl::MutexLock lock(&mu_);
      for (const KubeResource& r : options_.resources) {
        if (synced_.count(r.kind) > 0) continue;
        auto it = last_error_.find(r.kind);
        detail = it != last_error_.end() ? it->second : absl::StrCat(r.kind, ": no answer");
        break;
      }
    }
    Stop();
    return absl::UnavailableError(absl::StrCat("Kubernetes API server ", client_.config().Url(), " (",
                                               client_.config().source, "): not in sync after ",
                                               options_.initial_sync_timeout.count(), " ms: ", detail));
  }
  Publish();
  WriteStatuses();
  publisher_ = std::thread([this] { PublishLoop(); });
  return absl::OkStatus();
}

void KubeRegistry::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty() && !publisher_.joinable()) return;
    stopping_ = true;
  }
  for (auto& w : watchers_) w->Stop();
  sleeper_.Interrupt();
  client_.Shutdown();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  if (publisher_.joinable()) publisher_.join();
}

MeshSnapshotConstSharedPtr KubeRegistry::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void KubeRegistry::OnSynced(const KubeResource& resource) {
  absl::MutexLock lock(&mu_);
  synced_[resource.kind] = true;
  last_error_.erase(resource.kind);
}

void KubeRegistry::OnListFailed(const KubeResource& resource, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  last_error_[resource.kind] = std::string(status.message());
  // A type that is not served (CRD not installed) is empty, not missing:
  // the mesh starts without it and picks it up once it appears.
  if (absl::IsNotFound(status)) synced_[resource.kind] = true;
}

std::optional<KubeCondition> KubeRegistry::WantedCondition(const KubeResource& resource, const json& object,
                                                           const std::vector<ConfigError>& errors) const {
  if (!options_.write_status || !resource.status_subresource) return std::nullopt;
  const json& meta = object.value("metadata", json::object());
  const int64_t generation = meta.value("generation", int64_t{0});
  const json* current = nullptr;
  if (object.contains("status") && object["status"].is_object() && object["status"].contains("conditions") &&
      object["status"]["conditions"].is_array()) {
    for (const json& c : object["status"]["conditions"]) {
      if (c.is_object() && c.value("type", "") == "Accepted") current = &c;
    }
  }
  KubeCondition wanted;
  wanted.observed_generation = generation;
  if (!errors.empty()) {
    wanted.status = false;
    wanted.reason = kInvalidReason;
    wanted.message = ErrorsMessage(errors);
  } else {
    // Valid as far as discovery can tell. Leave a verdict of the policy
    // validator on this generation alone; replace ours or an older one.
    if (current != nullptr && current->value("observedGeneration", int64_t{0}) >= generation &&
        current->value("reason", "") != kInvalidReason) {
      return std::nullopt;
    }
    wanted.status = true;
    wanted.reason = kAcceptedReason;
    wanted.message = "";
  }
  if (current != nullptr && current->value("status", "") == (wanted.status ? "True" : "False") &&
      current->value("reason", "") == wanted.reason && current->value("message", "") == wanted.message &&
      current->value("observedGeneration", int64_t{0}) == wanted.observed_generation) {
    return std::nullopt;
  }
  return wanted;
}

void KubeRegistry::OnObject(const KubeResource& resource, KubeEventType type, const std::string& key,
                            const json& object) {
  const std::string ns = resource.namespaced ? object["metadata"].value("namespace", "") : "";
  const std::string name = object["metadata"].value("name", "");
  const std::string mesh_key = MeshObjectKey(resource.kind, ns, name);
  std::optional<KubeCondition> condition;
  {
    absl::MutexLock lock(&mu_);
    if (type == KubeEventType::kDeleted) {
      entries_.erase(mesh_key);
      pending_status_.erase(mesh_key);
    } else {
      json copy = object;
      if (copy["metadata"].is_object()) copy["metadata"].erase("managedFields");  // bulky and meaningless here
      DecodeResult decoded = DecodeObject(copy, SourceRef{"", -1});
      Entry& entry = entries_[mesh_key];
      entry.resource = &resource;
      entry.ns = ns;
      entry.name = name;
      if (decoded.decoded()) {
        entry.good = std::move(decoded.object);
        entry.errors.clear();
      } else if (decoded.ignored()) {
        entries_.erase(mesh_key);
      } else {
        entry.errors = std::move(decoded.errors);  // the last good version stays
      }
      auto it = entries_.find(mesh_key);
      condition = WantedCondition(resource, object, it == entries_.end() ? std::vector<ConfigError>{} : it->second.errors);
      if (condition) {
        pending_status_[mesh_key] = PendingStatus{resource.kind, ns, name, *condition};
      } else {
        pending_status_.erase(mesh_key);
      }
    }
    const auto now = SteadyClock::now();
    if (!dirty_) first_change_ = now;
    last_change_ = now;
    dirty_ = true;
  }
  (void)key;
}

MeshSnapshot KubeRegistry::BuildLocked() const {
  MeshSnapshot snapshot;
  std::set<std::string> selected;
  const bool filter = !selector_label_.empty();
  if (filter) {
    for (const auto& [key, entry] : entries_) {
      if (!entry.good || !std::holds_alternative<Namespace>(*entry.good)) continue;
      const auto& labels = std::get<Namespace>(*entry.good).meta.labels;
      auto it = labels.find(selector_label_);
      if (it != labels.end() && it->second == selector_value_) selected.insert(entry.name);
    }
  }
  for (const auto& [key, entry] : entries_) {
    if (filter) {
      const std::string& ns = entry.resource->namespaced ? entry.ns : entry.name;
      if (selected.count(ns) == 0) continue;
    }
    if (entry.good) AddToSnapshot(*entry.good, snapshot);
    for (const ConfigError& e : entry.errors) snapshot.errors.push_back(e);
  }
  return snapshot;
}

void KubeRegistry::Publish() {
  auto snapshot = std::make_shared<MeshSnapshot>();
  MeshSnapshotConstSharedPtr previous;
  {
    absl::MutexLock lock(&mu_);
    *snapshot = BuildLocked();
    dirty_ = false;
    previous = current_;
  }
  errors_gauge_.Set(static_cast<double>(snapshot->errors.size()));
  if (previous != nullptr && SameContent(*previous, *snapshot)) return;
  snapshot->version = previous == nullptr ? 1 : previous->version + 1;
  std::set<std::string> known;
  if (previous != nullptr) {
    for (const ConfigError& e : previous->errors) known.insert(e.ToString());
  }
  for (const ConfigError& e : snapshot->errors) {
    if (known.insert(e.ToString()).second) {
      WEFT_LOG(WARNING) << "config error: " << e.ToString();
    }
  }
  WEFT_LOG(INFO) << "kubernetes version " << snapshot->version << ": " << Summary(*snapshot);
  MeshSnapshotConstSharedPtr published = std::move(snapshot);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && previous != nullptr) return;
    current_ = published;
  }
  if (on_snapshot_) on_snapshot_(published);
}

void KubeRegistry::WriteStatuses() {
  std::map<std::string, PendingStatus> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_status_);
  }
  for (const auto& [key, p] : pending) {
    absl::Status s = status_writer_.WriteStatus(p.kind, p.ns, p.name, {p.condition});
    if (!s.ok() && !absl::IsNotFound(s) && !absl::IsCancelled(s)) {
      WEFT_LOG(WARNING) << "cannot write the status of " << p.kind << " " << p.ns << "/" << p.name << ": "
                        << s.message();
    }
  }
}

void KubeRegistry::PublishLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || dirty_ || !pending_status_.empty();
      };
      mu_.Await(absl::Condition(&work));
      // Debounce: wait for a quiet period, at most max_delay in all. Changes
      // arriving meanwhile move last_change_; the deadline is recomputed.
      while (!stopping_) {
        const auto now = SteadyClock::now();
        const auto deadline = std::min(last_change_ + options_.quiet_period, first_change_ + options_.max_delay);
        if (now >= deadline) break;
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(deadline - now));
      }
      if (stopping_) return;
    }
    Publish();
    WriteStatuses();
  }
}

}  // namespace weft::discovery
