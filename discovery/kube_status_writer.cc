#include "discovery/kube_status_writer.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "discovery/kube_resource.h"
#include "discovery/kube_watcher.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

KubeStatusWriter::KubeStatusWriter(KubeClient& client, common::Clock& clock) : client_(client), clock_(clock) {}

absl::Status KubeStatusWriter::WriteStatus(const std::string& kind, const std::string& ns, const std::string& name,
                                           const std::vector<KubeCondition>& conditions) {
  const KubeResource* resource = FindKubeResource(kind);
  if (resource == nullptr || !resource->status_subresource) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " has no status Weft writes"));
  }
  const std::string path = resource->ItemPath(ns, name);
  const std::string what = absl::StrCat("status of ", kind, " ", ns, "/", name);
  absl::Status last;
  for (int attempt = 0; attempt < 4; ++attempt) {
    absl::StatusOr<KubeResponse> got = client_.Request("GET", path);
    if (!got.ok()) return got.status();
    if (got->status != 200) return KubeHttpError("get " + what, *got);
    json object = json::parse(got->body, nullptr, false);
    if (!object.is_object()) return absl::DataLossError(absl::StrCat("get ", what, ": not a JSON object"));
    if (!object.contains("status") || !object["status"].is_object()) object["status"] = json::object();
    json& current = object["status"]["conditions"];
    if (!current.is_array()) current = json::array();
    bool changed = false;
    for (const KubeCondition& c : conditions) {
      json next = {{"type", c.type},
                   {"status", c.status ? "True" : "False"},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"observedGeneration", c.observed_generation},
                   {"lastTransitionTime", Rfc3339(clock_.WallNow())}};
      json* existing = nullptr;
      for (json& e : current) {
        if (e.is_object() && e.value("type", "") == c.type) existing = &e;
      }
      if (existing == nullptr) {
        current.push_back(std::move(next));
        changed = true;
        continue;
      }
      if (existing->value("status", "") == next["status"]) {
        next["lastTransitionTime"] = existing->value("lastTransitionTime", next["lastTransitionTime"].get<std::string>());
      }
      if (*existing != next) {
        *existing = std::move(next);
        changed = true;
      }
    }
    if (!changed) return absl::OkStatus();
    absl::StatusOr<KubeResponse> put = client_.Request("PUT", path + "/status", object.dump(), "application/json");
    if (!put.ok()) return put.status();
    if (put->status == 200 || put->status == 201) return absl::OkStatus();
    last = KubeHttpError("write " + what, *put);
    if (put->status != 409) return last;  // 409: changed meanwhile; read again
  }
  return last;
}

}  // namespace weft::discovery
