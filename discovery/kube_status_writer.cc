#include "discovery/kube_status_writer.h"

#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "discovery/kube_watcher.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

// The metav1.Condition for `c`; it keeps the lastTransitionTime of `old`
// (the condition of the same type now) when its status is unchanged.
json ConditionJson(const KubeCondition& c, const json* old, const std::string& now) {
  json next = {
      {"type", c.type},       {"status", c.status ? "True" : "False"},       {"reason", c.reason},
      {"message", c.message}, {"observedGeneration", c.observed_generation}, {"lastTransitionTime", now}};
  if (old != nullptr && old->is_object() && old->value("status", "") == next["status"] &&
      old->contains("lastTransitionTime") && (*old)["lastTransitionTime"].is_string()) {
    next["lastTransitionTime"] = (*old)["lastTransitionTime"];
  }
  return next;
}

const json* FindByType(const json& conditions, const std::string& type) {
  if (!conditions.is_array()) return nullptr;
  const json* found = nullptr;
  for (const json& e : conditions) {
    if (e.is_object() && e.value("type", "") == type) found = &e;
  }
  return found;
}

// Merges `conditions` into the array `current` by type; others are kept.
bool MergeConditions(const std::vector<KubeCondition>& conditions, const std::string& now, json& current) {
  if (!current.is_array()) current = json::array();
  bool changed = false;
  for (const KubeCondition& c : conditions) {
    json* existing = nullptr;
    for (json& e : current) {
      if (e.is_object() && e.value("type", "") == c.type) existing = &e;
    }
    json next = ConditionJson(c, existing, now);
    if (existing == nullptr) {
      current.push_back(std::move(next));
      changed = true;
    } else if (*existing != next) {
      *existing = std::move(next);
      changed = true;
    }
  }
  return changed;
}

bool IsOurs(const json& entry) {
  return entry.is_object() && entry.contains("controllerName") && entry["controllerName"].is_string() &&
         entry["controllerName"].get<std::string>() == kWeftControllerName;
}

json RouteParentJson(const KubeRouteParentStatus& p, const json* old, const std::string& now) {
  json conditions = json::array();
  for (const KubeCondition& c : p.conditions) {
    const json* old_condition =
        old != nullptr && old->contains("conditions") ? FindByType((*old)["conditions"], c.type) : nullptr;
    conditions.push_back(ConditionJson(c, old_condition, now));
  }
  return {{"parentRef", p.parent_ref}, {"controllerName", kWeftControllerName}, {"conditions", conditions}};
}

// Replaces Weft's entries of status.parents in place (an entry per
// parentRef), drops those no longer wanted and appends new ones; other
// controllers' entries stay where they are.
bool MergeRouteParents(const std::vector<KubeRouteParentStatus>& parents, const std::string& now,
                       json& current) {
  if (!current.is_array()) current = json::array();
  std::vector<bool> placed(parents.size(), false);
  json next = json::array();
  for (const json& e : current) {
    if (!IsOurs(e)) {
      next.push_back(e);
      continue;
    }
    for (size_t i = 0; i < parents.size(); ++i) {
      if (!placed[i] && e.contains("parentRef") && e["parentRef"] == parents[i].parent_ref) {
        next.push_back(RouteParentJson(parents[i], &e, now));
        placed[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < parents.size(); ++i) {
    if (!placed[i]) next.push_back(RouteParentJson(parents[i], nullptr, now));
  }
  if (next == current) return false;
  current = std::move(next);
  return true;
}

}  // namespace

bool ApplyKubeVerdict(const KubeObjectVerdict& verdict, std::chrono::system_clock::time_point now,
                      json& object) {
  if (!object.is_object()) object = json::object();
  if (!object.contains("status") || !object["status"].is_object()) object["status"] = json::object();
  json& status = object["status"];
  const std::string time = common::Rfc3339Utc(now);
  bool changed = false;
  if (!verdict.conditions.empty()) changed |= MergeConditions(verdict.conditions, time, status["conditions"]);
  if (verdict.route) changed |= MergeRouteParents(verdict.route_parents, time, status["parents"]);
  return changed;
}

KubeStatusWriter::KubeStatusWriter(KubeClient& client, common::Clock& clock)
    : client_(client), clock_(clock) {}

absl::StatusOr<bool> KubeStatusWriter::Write(const KubeResource& resource, const std::string& ns,
                                             const std::string& name, const KubeObjectVerdict& verdict) {
  if (!resource.status_subresource) {
    return absl::InvalidArgumentError(absl::StrCat(resource.kind, " has no status Weft writes"));
  }
  const std::string path = resource.ItemPath(ns, name);
  const std::string what = absl::StrCat("status of ", resource.kind, " ", ns, "/", name);
  absl::Status last;
  for (int attempt = 0; attempt < 4; ++attempt) {
    absl::StatusOr<KubeResponse> got = client_.Request("GET", path);
    if (!got.ok()) return got.status();
    if (got->status != 200) return KubeHttpError("get " + what, *got);
    json object = json::parse(got->body, nullptr, false);
    if (!object.is_object()) return absl::DataLossError(absl::StrCat("get ", what, ": not a JSON object"));
    if (!ApplyKubeVerdict(verdict, clock_.WallNow(), object)) return false;
    absl::StatusOr<KubeResponse> put =
        client_.Request("PUT", path + "/status", object.dump(), "application/json");
    if (!put.ok()) return put.status();
    if (put->status == 200 || put->status == 201) return true;
    last = KubeHttpError("write " + what, *put);
    if (put->status != 409) return last;  // 409: changed meanwhile; read again
  }
  return last;
}

}  // namespace weft::discovery
