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
    return absl::InvalidArgumentError(
        absl::StrCat("--namespace-selector: \"", text, "\" is not LABEL=VALUE"));
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
      errors_gauge_(metrics.GetGauge(
          "weft_config_errors", "Problems in the configuration now (invalid files, documents, objects)")),
      status_writes_(metrics.GetCounter("weft_kube_status_writes_total",
                                        "Status subresource writes of objects whose status Weft owns")),
      status_write_errors_(metrics.GetCounter("weft_kube_status_write_errors_total",
                                              "Status subresource writes that failed (logged)")) {}

KubeRegistry::~KubeRegistry() { Stop(); }

absl::Status KubeRegistry::Run(SnapshotCallback on_snapshot) {
  if (started_) return absl::FailedPreconditionError("KubeRegistry::Run called twice");
  started_ = true;
  if (!options_.namespace_selector.empty()) {
    absl::Status parsed =
        ParseNamespaceSelector(options_.namespace_selector, &selector_label_, &selector_value_);
    if (!parsed.ok()) return parsed;
  }
  on_snapshot_ = std::move(on_snapshot);
  for (const KubeResource& resource : options_.resources) {
    watchers_.push_back(std::make_unique<KubeWatcher>(client_, resource, *this, sleeper_, metrics_, clock_,
                                                      options_.watcher));
  }
  for (auto& watcher : watchers_) {
    KubeWatcher* w = watcher.get();
    threads_.emplace_back([w] { w->Run(); });
  }

  // Wait for every kind's first list.
  const size_t kinds = options_.resources.size();
  auto all_synced = [this, kinds]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || synced_.size() == kinds; };
  bool synced;
  {
    absl::MutexLock lock(&mu_);
    synced =
        mu_.AwaitWithTimeout(absl::Condition(&all_synced), absl::FromChrono(options_.initial_sync_timeout)) &&
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

std::optional<KubeObjectVerdict> KubeRegistry::WantedStatusLocked(const std::string& key,
                                                                  const Entry& entry) const {
  if (!options_.write_status || entry.resource == nullptr || !entry.resource->status_subresource)
    return std::nullopt;
  const bool route = entry.resource->kind == "HTTPRoute";
  if (!entry.errors.empty()) {
    // An HTTPRoute that does not decode names no parent Weft could report on.
    if (route) return std::nullopt;
    KubeObjectVerdict verdict;
    verdict.conditions.push_back(
        KubeCondition{"Accepted", false, kInvalidReason, ErrorsMessage(entry.errors), entry.generation});
    return verdict;
  }
  const bool policy = entry.good && std::holds_alternative<PolicyDocument>(*entry.good);
  if (policy && options_.policy_verdicts) {
    // Only a verdict on the generation the object has now.
    auto published = published_generations_.find(key);
    auto verdict = verdicts_.find(key);
    if (published == published_generations_.end() || published->second != entry.generation ||
        verdict == verdicts_.end()) {
      return std::nullopt;
    }
    KubeObjectVerdict wanted = verdict->second;
    for (KubeCondition& c : wanted.conditions) c.observed_generation = entry.generation;
    for (KubeRouteParentStatus& p : wanted.route_parents) {
      for (KubeCondition& c : p.conditions) c.observed_generation = entry.generation;
    }
    return wanted;
  }
  if (route) return std::nullopt;  // without the validator there is nothing to say about its parents
  KubeObjectVerdict verdict;
  verdict.conditions.push_back(KubeCondition{"Accepted", true, kAcceptedReason, "", entry.generation});
  return verdict;
}

void KubeRegistry::OnObject(const KubeResource& resource, KubeEventType type, const std::string& key,
                            const json& object) {
  const std::string ns = resource.namespaced ? object["metadata"].value("namespace", "") : "";
  const std::string name = object["metadata"].value("name", "");
  const std::string mesh_key = MeshObjectKey(resource.kind, ns, name);
  {
    absl::MutexLock lock(&mu_);
    if (type == KubeEventType::kDeleted) {
      entries_.erase(mesh_key);
      status_dirty_.erase(mesh_key);
    } else {
      json copy = object;
      if (copy["metadata"].is_object())
        copy["metadata"].erase("managedFields");  // bulky and meaningless here
      DecodeResult decoded = DecodeObject(copy, SourceRef{"", -1});
      Entry& entry = entries_[mesh_key];
      entry.resource = &resource;
      entry.ns = ns;
      entry.name = name;
      const json& meta = object["metadata"];
      entry.generation = meta.contains("generation") && meta["generation"].is_number_integer()
                             ? meta["generation"].get<int64_t>()
                             : 0;
      entry.status = object.contains("status") ? object["status"] : json();
      if (decoded.decoded()) {
        entry.good = std::move(decoded.object);
        entry.good_generation = entry.generation;
        entry.errors.clear();
      } else if (decoded.ignored()) {
        entries_.erase(mesh_key);
      } else {
        entry.errors = std::move(decoded.errors);  // the last good version stays
      }
      if (entries_.count(mesh_key) > 0) status_dirty_.insert(mesh_key);
    }
    const auto now = SteadyClock::now();
    if (!dirty_) first_change_ = now;
    last_change_ = now;
    dirty_ = true;
  }
  (void)key;
}

void KubeRegistry::ReportVerdicts(uint64_t version, std::map<std::string, KubeObjectVerdict> verdicts) {
  absl::MutexLock lock(&mu_);
  if (current_ == nullptr || current_->version != version) return;
  verdicts_ = std::move(verdicts);
  for (const auto& [key, verdict] : verdicts_) {
    if (entries_.count(key) > 0) status_dirty_.insert(key);
  }
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
  std::map<std::string, int64_t> generations;
  {
    absl::MutexLock lock(&mu_);
    *snapshot = BuildLocked();
    dirty_ = false;
    previous = current_;
    for (const auto& [key, entry] : entries_) {
      if (entry.good) generations[key] = entry.good_generation;
    }
  }
  errors_gauge_.Set(static_cast<double>(snapshot->errors.size()));
  if (previous != nullptr && SameContent(*previous, *snapshot)) {
    // Same content, so the verdicts on it still hold, also for a generation
    // that changed nothing that matters (reordered keys, say).
    absl::MutexLock lock(&mu_);
    for (const auto& [key, generation] : generations) {
      auto it = published_generations_.find(key);
      if (it != published_generations_.end() && it->second != generation) status_dirty_.insert(key);
    }
    published_generations_ = std::move(generations);
    return;
  }
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
    published_generations_ = std::move(generations);
    verdicts_.clear();  // until the validator reports on this snapshot
  }
  if (on_snapshot_) on_snapshot_(published);
}

void KubeRegistry::WriteStatuses() {
  struct Write {
    const KubeResource* resource;
    std::string ns, name, key;
    KubeObjectVerdict verdict;
  };
  std::vector<Write> writes;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& key : status_dirty_) {
      auto it = entries_.find(key);
      if (it == entries_.end()) continue;
      const Entry& entry = it->second;
      std::optional<KubeObjectVerdict> wanted = WantedStatusLocked(key, entry);
      if (!wanted) continue;
      // Skip what the object says already (the watch shows our last write).
      json seen = {{"status", entry.status}};
      if (!ApplyKubeVerdict(*wanted, clock_.WallNow(), seen)) continue;
      writes.push_back(Write{entry.resource, entry.ns, entry.name, key, *std::move(wanted)});
    }
    status_dirty_.clear();
  }
  std::vector<std::string> failed;
  for (const Write& w : writes) {
    absl::StatusOr<bool> wrote = status_writer_.Write(*w.resource, w.ns, w.name, w.verdict);
    const absl::Status s = wrote.status();
    if (s.ok()) {
      if (*wrote) status_writes_.Inc();
    } else if (!absl::IsNotFound(s) && !absl::IsCancelled(s)) {
      status_write_errors_.Inc();
      failed.push_back(w.key);
      WEFT_LOG(WARNING) << "cannot write the status of " << w.resource->kind << " " << w.ns << "/" << w.name
                        << ": " << s.message() << " (retrying)";
    }
  }
  if (failed.empty()) return;
  // Try again after a pause (not in a tight loop against a failing server).
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(2));
  status_dirty_.insert(failed.begin(), failed.end());
}

void KubeRegistry::PublishLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || dirty_ || !status_dirty_.empty();
      };
      mu_.Await(absl::Condition(&work));
      // Debounce: wait for a quiet period, at most max_delay in all. Changes
      // arriving meanwhile move last_change_; the deadline is recomputed.
      while (!stopping_) {
        const auto now = SteadyClock::now();
        const auto deadline =
            std::min(last_change_ + options_.quiet_period, first_change_ + options_.max_delay);
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
