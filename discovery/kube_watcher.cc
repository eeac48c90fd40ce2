#include "discovery/kube_watcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

constexpr size_t kMaxLineBytes = 16 << 20;  // one event; larger is a broken stream
constexpr const char* kHelpRestarts = "Kubernetes watches that ended and were resumed, by kind";
constexpr const char* kHelpRelists = "Kubernetes full relists after the first (410 Gone, lost history), by kind";
constexpr const char* kHelpEvents = "Kubernetes changes received (watch events and relist differences), by kind and type";
constexpr const char* kHelpLastSync = "Unix time at which a kind was last known to be in sync with the API server";

std::string MetaString(const json& object, const char* key) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto it = meta->find(key);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

std::string StatusMessage(const std::string& body) {
  json status = json::parse(body, nullptr, false);
  if (status.is_object() && status.contains("message") && status["message"].is_string()) {
    return status["message"].get<std::string>();
  }
  return body.substr(0, 200);
}

}  // namespace

std::string KubeObjectKey(const json& object) {
  const std::string name = MetaString(object, "name");
  if (name.empty()) return "";
  const std::string ns = MetaString(object, "namespace");
  return ns.empty() ? name : absl::StrCat(ns, "/", name);
}

absl::Status KubeHttpError(const std::string& what, const KubeResponse& response) {
  const std::string message = absl::StrCat(what, ": HTTP ", response.status, ": ", StatusMessage(response.body));
  switch (response.status) {
    case 404: return absl::NotFoundError(message);
    case 409: return absl::AbortedError(message);
    case 410: return absl::OutOfRangeError(message);
    case 401:
    case 403: return absl::PermissionDeniedError(message);
    case 400:
    case 422: return absl::InvalidArgumentError(message);
    default: return absl::UnavailableError(message);
  }
}

KubeWatcher::KubeWatcher(KubeClient& client, KubeResource resource, KubeWatchSink& sink, Sleeper& sleeper,
                         common::MetricsRegistry& metrics, common::Clock& clock, KubeWatcherOptions options)
    : client_(client),
      resource_(std::move(resource)),
      sink_(sink),
      sleeper_(sleeper),
      clock_(clock),
      options_(options),
      backoff_(options.backoff, options.backoff_seed != 0 ? options.backoff_seed : std::random_device{}()),
      restarts_(metrics.GetCounter("weft_kube_watch_restarts_total", kHelpRestarts, {{"kind", resource_.kind}})),
      relists_(metrics.GetCounter("weft_kube_relists_total", kHelpRelists, {{"kind", resource_.kind}})),
      added_(metrics.GetCounter("weft_kube_events_total", kHelpEvents, {{"kind", resource_.kind}, {"type", "ADDED"}})),
      modified_(metrics.GetCounter("weft_kube_events_total", kHelpEvents,
                                   {{"kind", resource_.kind}, {"type", "MODIFIED"}})),
      deleted_(metrics.GetCounter("weft_kube_events_total", kHelpEvents,
                                  {{"kind", resource_.kind}, {"type", "DELETED"}})),
      bookmarks_(metrics.GetCounter("weft_kube_events_total", kHelpEvents,
                                    {{"kind", resource_.kind}, {"type", "BOOKMARK"}})),
      errors_(metrics.GetCounter("weft_kube_events_total", kHelpEvents, {{"kind", resource_.kind}, {"type", "ERROR"}})),
      last_sync_(metrics.GetGauge("weft_kube_last_sync_timestamp_seconds", kHelpLastSync, {{"kind", resource_.kind}})) {}

void KubeWatcher::MarkSynced() {
  last_sync_.Set(std::chrono::duration<double>(clock_.WallNow().time_since_epoch()).count());
}

void KubeWatcher::Run() {
  bool need_list = true;
  bool listed_once = false;
  while (!stopping_) {
    if (need_list) {
      absl::Status listed = ListAndReplace();
      if (stopping_) return;
      if (!listed.ok()) {
        if (absl::IsNotFound(listed)) {
          if (!warned_not_served_) {
            WEFT_LOG(WARNING) << "Kubernetes does not serve " << resource_.kind << " (" << resource_.ApiVersion()
                              << "): is its CRD installed? Retrying; until then there are none";
            warned_not_served_ = true;
          }
        } else {
          WEFT_LOG(WARNING) << "listing " << resource_.kind << " failed, retrying: " << listed.message();
        }
        sink_.OnListFailed(resource_, listed);
        if (!sleeper_.SleepFor(backoff_.Next())) return;
        continue;
      }
      if (warned_not_served_) {
        WEFT_LOG(INFO) << "Kubernetes serves " << resource_.kind << " now";
        warned_not_served_ = false;
      }
      if (listed_once) relists_.Inc();
      listed_once = true;
      need_list = false;
      backoff_.Reset();
      MarkSynced();
      sink_.OnSynced(resource_);
    }
    int events = 0;
    const auto started = std::chrono::steady_clock::now();
    WatchEnd end = WatchOnce(&events);
    if (stopping_) return;
    if (end == WatchEnd::kGone) {
      WEFT_LOG(INFO) << resource_.kind << " resourceVersion " << resource_version_ << " expired (410 Gone): relisting";
      need_list = true;
      continue;
    }
    restarts_.Inc();
    const bool quick = std::chrono::steady_clock::now() - started < std::chrono::seconds(1);
    if (end == WatchEnd::kClosed && (events > 0 || !quick)) {
      backoff_.Reset();  // a healthy stream that ended: resume at once
      continue;
    }
    if (events > 0) backoff_.Reset();
    if (!sleeper_.SleepFor(backoff_.Next())) return;
  }
}

absl::Status KubeWatcher::ListAndReplace() {
  std::map<std::string, json> fresh;
  std::string continue_token;
  std::string list_version;
  int expired_restarts = 0;
  while (true) {
    std::string path = absl::StrCat(resource_.CollectionPath(), "?limit=", options_.page_size);
    if (!continue_token.empty()) absl::StrAppend(&path, "&continue=", UrlEncode(continue_token));
    absl::StatusOr<KubeResponse> response = client_.Request("GET", path);
    if (!response.ok()) return response.status();
    if (response->status == 410 && !continue_token.empty() && expired_restarts < 3) {
      // The snapshot behind the continue token was compacted: start over.
      ++expired_restarts;
      fresh.clear();
      continue_token.clear();
      continue;
    }
    if (response->status != 200) return KubeHttpError(absl::StrCat("list ", resource_.kind), *response);
    json list = json::parse(response->body, nullptr, false);
    if (!list.is_object() || !list.contains("items") || !list["items"].is_array()) {
      return absl::DataLossError(absl::StrCat("list ", resource_.kind, ": the response is not a list"));
    }
    for (json& item : list["items"]) {
      if (!item.is_object()) continue;
      // List items of built-in types carry no apiVersion/kind.
      item["apiVersion"] = resource_.ApiVersion();
      item["kind"] = resource_.kind;
      std::string key = KubeObjectKey(item);
      if (key.empty()) continue;
      fresh[key] = std::move(item);
    }
    const json& meta = list.value("metadata", json::object());
    list_version = meta.value("resourceVersion", "");
    continue_token = meta.value("continue", "");
    if (continue_token.empty()) break;
  }
  // Report the difference between what we had and what the server has now.
  for (auto it = store_.begin(); it != store_.end();) {
    if (fresh.count(it->first) == 0) {
      Emit(KubeEventType::kDeleted, it->first, it->second);
      it = store_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [key, object] : fresh) {
    auto old = store_.find(key);
    if (old == store_.end()) {
      Emit(KubeEventType::kAdded, key, object);
    } else if (MetaString(old->second, "resourceVersion") != MetaString(object, "resourceVersion") ||
               old->second != object) {
      Emit(KubeEventType::kModified, key, object);
    }
  }
  store_ = std::move(fresh);
  resource_version_ = list_version;
  return absl::OkStatus();
}

KubeWatcher::WatchEnd KubeWatcher::WatchOnce(int* events) {
  const std::string path =
      absl::StrCat(resource_.CollectionPath(), "?watch=true&allowWatchBookmarks=true&resourceVersion=",
                   UrlEncode(resource_version_), "&timeoutSeconds=", options_.watch_timeout.count());
  std::string buffer;
  std::string error_body;
  int http_status = 0;
  WatchEnd end = WatchEnd::kClosed;
  bool ended_by_event = false;
  absl::Status streamed = client_.Stream(
      path, options_.watch_timeout + options_.read_grace, &http_status, [&](std::string_view data) {
        if (stopping_) return false;
        if (http_status != 200) {
          if (error_body.size() < 65536) error_body.append(data);
          return true;
        }
        buffer.append(data);
        size_t start = 0;
        for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(buffer.data() + start, nl - start);
          if (!HandleLine(line, &end, events)) {
            ended_by_event = true;
            return false;
          }
        }
        buffer.erase(0, start);
        if (buffer.size() > kMaxLineBytes) {
          WEFT_LOG(WARNING) << "watch " << resource_.kind << ": an event longer than " << kMaxLineBytes
                            << " bytes; restarting the watch";
          end = WatchEnd::kError;
          ended_by_event = true;
          return false;
        }
        return true;
      });
  if (stopping_) return WatchEnd::kError;
  if (ended_by_event) return end;
  if (http_status == 410) return WatchEnd::kGone;
  if (http_status != 200 && http_status != 0) {
    absl::Status error = KubeHttpError(absl::StrCat("watch ", resource_.kind), KubeResponse{http_status, error_body});
    WEFT_LOG(WARNING) << error.message();
    return WatchEnd::kError;
  }
  if (!streamed.ok()) {
    WEFT_LOG(DEBUG) << "watch " << resource_.kind << " broke: " << streamed.message();
    return WatchEnd::kError;
  }
  // The last line lacks its newline: the stream was cut mid-event.
  std::string_view rest(buffer);
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ')) rest.remove_suffix(1);
  if (!rest.empty()) {
    WatchEnd tail_end = WatchEnd::kClosed;
    if (!HandleLine(rest, &tail_end, events)) return tail_end;
  }
  return WatchEnd::kClosed;
}

bool KubeWatcher::HandleLine(std::string_view line, WatchEnd* end, int* events) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return true;
  json event = json::parse(line, nullptr, false);
  if (!event.is_object() || !event.contains("type") || !event["type"].is_string() || !event.contains("object") ||
      !event["object"].is_object()) {
    errors_.Inc();
    WEFT_LOG(WARNING) << "watch " << resource_.kind << ": malformed event, restarting the watch";
    *end = WatchEnd::kError;
    return false;
  }
  const std::string type = event["type"].get<std::string>();
  json& object = event["object"];
  if (type == "ERROR") {
    errors_.Inc();
    int code = object.value("code", 0);
    if (code == 410) {
      *end = WatchEnd::kGone;
    } else {
      WEFT_LOG(WARNING) << "watch " << resource_.kind << ": ERROR event " << code << ": "
                        << object.value("message", std::string());
      *end = WatchEnd::kError;
    }
    return false;
  }
  const std::string rv = MetaString(object, "resourceVersion");
  if (type == "BOOKMARK") {
    bookmarks_.Inc();
    if (!rv.empty()) resource_version_ = rv;
    MarkSynced();
    return true;
  }
  KubeEventType kind;
  if (type == "ADDED") {
    kind = KubeEventType::kAdded;
  } else if (type == "MODIFIED") {
    kind = KubeEventType::kModified;
  } else if (type == "DELETED") {
    kind = KubeEventType::kDeleted;
  } else {
    errors_.Inc();
    WEFT_LOG(WARNING) << "watch " << resource_.kind << ": unknown event type \"" << type << "\", ignored";
    return true;
  }
  std::string key = KubeObjectKey(object);
  if (key.empty()) {
    errors_.Inc();
    WEFT_LOG(WARNING) << "watch " << resource_.kind << ": " << type << " event without metadata.name, ignored";
    return true;
  }
  object["apiVersion"] = resource_.ApiVersion();
  object["kind"] = resource_.kind;
  ++*events;
  if (!rv.empty()) resource_version_ = rv;
  if (kind == KubeEventType::kDeleted) {
    store_.erase(key);
  } else {
    store_[key] = object;
  }
  Emit(kind, key, object);
  MarkSynced();
  return true;
}

void KubeWatcher::Emit(KubeEventType type, const std::string& key, const json& object) {
  switch (type) {
    case KubeEventType::kAdded: added_.Inc(); break;
    case KubeEventType::kModified: modified_.Inc(); break;
    case KubeEventType::kDeleted: deleted_.Inc(); break;
  }
  sink_.OnObject(resource_, type, key, object);
}

}  // namespace weft::discovery
