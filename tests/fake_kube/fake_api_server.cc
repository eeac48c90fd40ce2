#include "tests/fake_kube/fake_api_server.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include <httplib.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace weft::fake_kube {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

std::vector<FakeResourceType> DefaultTypes() {
  return {
      {"", "v1", "Namespace", "namespaces", false, false, false},
      {"", "v1", "Service", "services", true, false, false},
      {"", "v1", "Pod", "pods", true, false, false},
      {"", "v1", "ConfigMap", "configmaps", true, false, false},
      {"", "v1", "Secret", "secrets", true, false, false},
      {"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false, false},
      {"gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, true, true},
      {"weft.io", "v1alpha1", "Workload", "workloads", true, true, true},
      {"weft.io", "v1alpha1", "TrafficPolicy", "trafficpolicies", true, true, true},
      {"weft.io", "v1alpha1", "AuthorizationPolicy", "authorizationpolicies", true, true, true},
      {"weft.io", "v1alpha1", "RateLimitPolicy", "ratelimitpolicies", true, true, true},
      {"weft.io", "v1alpha1", "MTLSPolicy", "mtlspolicies", true, true, true},
  };
}

// The Kubernetes error object (meta/v1 Status).
json StatusObject(int code, const std::string& reason, const std::string& message) {
  return json{{"kind", "Status"},       {"apiVersion", "v1"},  {"metadata", json::object()},
              {"status", "Failure"},     {"message", message},  {"reason", reason},
              {"code", code}};
}

std::string ReasonFor(int code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Expired";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 504: return "Timeout";
    default: return "InternalError";
  }
}

int FromStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kOutOfRange: return 410;
    case absl::StatusCode::kInvalidArgument: return 422;
    case absl::StatusCode::kFailedPrecondition: return 400;
    default: return 500;
  }
}

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Key(const std::string& ns, const std::string& name) { return ns.empty() ? name : ns + "/" + name; }

// Everything but metadata and status: a change here bumps metadata.generation.
json SpecPart(const json& o) {
  json out = o;
  out.erase("metadata");
  out.erase("status");
  return out;
}

X509* ParseCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

EVP_PKEY* ParseKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return key;
}

X509_STORE* ParseStore(const std::string& pem) {
  X509_STORE* store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
  }
  BIO_free(bio);
  return store;
}

}  // namespace

class FakeApiServer::Impl {
 public:
  explicit Impl(FakeApiServerOptions options) : options_(std::move(options)), types_(DefaultTypes()) {
    for (const char* ns : {"default", "kube-system"}) {
      json o = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
      (void)CreateLocked(std::move(o));
    }
  }

  // ---------------------------------------------------------------- types
  int TypeIndex(const std::string& api_version, const std::string& kind) const {
    for (size_t i = 0; i < types_.size(); ++i) {
      if (types_[i].ApiVersion() == api_version && types_[i].kind == kind) return static_cast<int>(i);
    }
    return -1;
  }
  int TypeIndexByPlural(const std::string& group, const std::string& version, const std::string& plural) const {
    for (size_t i = 0; i < types_.size(); ++i) {
      const auto& t = types_[i];
      if (t.group == group && t.version == version && t.plural == plural) return static_cast<int>(i);
    }
    return -1;
  }
  bool ServedLocked(int type) const {
    const auto& t = types_[type];
    return !t.crd || uninstalled_groups_.count(t.group) == 0;
  }

  // ---------------------------------------------------------------- storage
  struct Event {
    uint64_t rv;
    int type;
    std::string ns;
    std::string kind;  // ADDED, MODIFIED, DELETED
    json object;
    std::optional<json> old;  // the previous state, for reconstructing history
  };

  void Record(int type, const std::string& ns, const char* kind, const json& object, std::optional<json> old) {
    events_.push_back(Event{rv_, type, ns, kind, object, std::move(old)});
    cv_.notify_all();
  }

  absl::StatusOr<json> CreateLocked(json object) {
    auto typed = Identify(object);
    if (!typed.ok()) return typed.status();
    auto [type, ns, name] = *typed;
    auto& items = objects_[type];
    if (items.count(Key(ns, name)) > 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(types_[type].plural, " \"", name, "\" already exists"));
    }
    json& meta = object["metadata"];
    meta["uid"] = absl::StrCat("00000000-0000-4000-8000-", ++uid_counter_);
    meta["creationTimestamp"] = NowRfc3339();
    meta.erase("deletionTimestamp");
    if (types_[type].status_subresource) {
      meta["generation"] = 1;
      object.erase("status");
    }
    meta["resourceVersion"] = std::to_string(++rv_);
    items[Key(ns, name)] = object;
    Record(type, ns, "ADDED", object, std::nullopt);
    return object;
  }

  // Replaces the object. `status_only`: the status subresource (only status
  // changes); otherwise status is kept when the type has a status subresource.
  absl::StatusOr<json> UpdateLocked(json object, bool status_only, bool check_rv) {
    auto typed = Identify(object);
    if (!typed.ok()) return typed.status();
    auto [type, ns, name] = *typed;
    auto& items = objects_[type];
    auto it = items.find(Key(ns, name));
    if (it == items.end()) {
      return absl::NotFoundError(absl::StrCat(types_[type].plural, " \"", name, "\" not found"));
    }
    const json& old = it->second;
    if (check_rv) {
      std::string rv = object["metadata"].value("resourceVersion", "");
      if (!rv.empty() && rv != old["metadata"]["resourceVersion"].get<std::string>()) {
        return absl::AbortedError(absl::StrCat("Operation cannot be fulfilled on ", types_[type].plural, " \"",
                                               name, "\": the object has been modified; please apply your "
                                               "changes to the latest version and try again"));
      }
    }
    json next;
    if (status_only) {
      next = old;
      if (object.contains("status")) {
        next["status"] = object["status"];
      } else {
        next.erase("status");
      }
    } else {
      next = object;
      json& meta = next["metadata"];
      for (const char* k : {"uid", "creationTimestamp", "generation"}) {
        if (old["metadata"].contains(k)) meta[k] = old["metadata"][k];
      }
      if (types_[type].status_subresource) {
        if (old.contains("status")) {
          next["status"] = old["status"];
        } else {
          next.erase("status");
        }
        if (SpecPart(next) != SpecPart(old)) meta["generation"] = old["metadata"].value("generation", 1) + 1;
      }
    }
    next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"];
    if (next == old) return old;  // a no-op write changes nothing, not even the version
    next["metadata"]["resourceVersion"] = std::to_string(++rv_);
    json previous = old;
    it->second = next;
    Record(type, ns, "MODIFIED", next, std::move(previous));
    return next;
  }

  absl::Status DeleteLocked(int type, const std::string& ns, const std::string& name) {
    auto& items = objects_[type];
    auto it = items.find(Key(ns, name));
    if (it == items.end()) {
      return absl::NotFoundError(absl::StrCat(types_[type].plural, " \"", name, "\" not found"));
    }
    if (types_[type].kind == "Namespace") {
      // The namespace controller deletes everything in it first.
      for (size_t t = 0; t < types_.size(); ++t) {
        if (!types_[t].namespaced) continue;
        std::vector<std::string> names;
        for (const auto& [key, o] : objects_[t]) {
          if (o["metadata"].value("namespace", "") == name) names.push_back(o["metadata"]["name"]);
        }
        for (const auto& n : names) (void)DeleteLocked(static_cast<int>(t), name, n);
      }
      it = items.find(Key(ns, name));
    }
    json old = it->second;
    json gone = old;
    gone["metadata"]["resourceVersion"] = std::to_string(++rv_);
    items.erase(it);
    Record(type, ns, "DELETED", gone, std::move(old));
    return absl::OkStatus();
  }

  // The type, namespace and name of `object`; defaults the namespace.
  absl::StatusOr<std::tuple<int, std::string, std::string>> Identify(json& object) {
    if (!object.is_object()) return absl::InvalidArgumentError("the object must be a JSON object");
    std::string api_version = object.value("apiVersion", "");
    std::string kind = object.value("kind", "");
    int type = TypeIndex(api_version, kind);
    if (type < 0 || !ServedLocked(type)) {
      return absl::NotFoundError(absl::StrCat("no matches for kind \"", kind, "\" in version \"",
                                              api_version, "\""));
    }
    if (!object.contains("metadata") || !object["metadata"].is_object()) {
      return absl::InvalidArgumentError("metadata: Required value");
    }
    json& meta = object["metadata"];
    std::string name = meta.value("name", "");
    if (name.empty()) return absl::InvalidArgumentError("metadata.name: Required value: name is required");
    std::string ns;
    if (types_[type].namespaced) {
      ns = meta.value("namespace", "");
      if (ns.empty()) ns = "default";
      meta["namespace"] = ns;
      if (objects_[TypeIndex("v1", "Namespace")].count(ns) == 0) {
        return absl::NotFoundError(absl::StrCat("namespaces \"", ns, "\" not found"));
      }
    } else {
      meta.erase("namespace");
    }
    return std::make_tuple(type, ns, name);
  }

  // The objects of `type` as they were at resourceVersion `rv`, undoing the
  // events after it (like reading an older etcd revision).
  std::map<std::string, json> StateAtLocked(int type, uint64_t rv) {
    std::map<std::string, json> state = objects_[type];
    for (auto it = events_.rbegin(); it != events_.rend() && it->rv > rv; ++it) {
      if (it->type != type) continue;
      const json& meta = it->object["metadata"];
      std::string key = Key(meta.value("namespace", ""), meta["name"].get<std::string>());
      if (it->kind == "ADDED") {
        state.erase(key);
      } else {
        state[key] = *it->old;
      }
    }
    return state;
  }

  // ---------------------------------------------------------------- watches
  struct Watch {
    int type = 0;
    std::string ns;
    uint64_t cursor = 0;
    bool bookmarks = false;
    SteadyClock::time_point deadline;
    SteadyClock::time_point next_bookmark;
    std::deque<json> initial;  // synthetic ADDED events ("get state and start at most recent")
    bool drop = false;
    bool expire = false;
    bool bookmark_now = false;
  };

  std::string EventLine(const std::string& type, const json& object) {
    return json{{"type", type}, {"object", object}}.dump() + "\n";
  }

  // One turn of a watch stream: waits briefly for something to send.
  bool Pump(Watch& w, httplib::DataSink& sink) {
    std::string out;
    bool finish = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto has_work = [&] {
        return stopping_ || w.drop || w.expire || w.bookmark_now || !w.initial.empty() ||
               (!events_.empty() && events_.back().rv > w.cursor) || w.cursor < compacted_rv_;
      };
      auto wake = std::min({SteadyClock::now() + std::chrono::milliseconds(100), w.deadline,
                            w.bookmarks ? w.next_bookmark : SteadyClock::time_point::max()});
      cv_.wait_until(lock, wake, has_work);
      const auto now = SteadyClock::now();
      if (stopping_ || w.drop) return false;  // abort: the connection closes without a final chunk
      if (w.expire || w.cursor < compacted_rv_) {
        out = EventLine("ERROR", StatusObject(410, "Expired", absl::StrCat("too old resource version: ", w.cursor,
                                                                           " (", compacted_rv_, ")")));
        finish = true;
      } else if (!ServedLocked(w.type)) {
        finish = true;
      } else if (now < stall_until_) {
        // Stalled: nothing, not even bookmarks.
      } else {
        const FakeResourceType& t = types_[w.type];
        while (!w.initial.empty()) {
          out += EventLine("ADDED", w.initial.front());
          w.initial.pop_front();
        }
        auto first = std::upper_bound(events_.begin(), events_.end(), w.cursor,
                                      [](uint64_t rv, const Event& e) { return rv < e.rv; });
        for (auto it = first; it != events_.end(); ++it) {
          if (it->type != w.type || (!w.ns.empty() && it->ns != w.ns)) continue;
          json object = it->object;
          object["apiVersion"] = t.ApiVersion();
          object["kind"] = t.kind;
          out += EventLine(it->kind, object);
        }
        w.cursor = std::max(w.cursor, rv_);
        if (w.bookmarks && (w.bookmark_now || now >= w.next_bookmark)) {
          json bookmark = {{"apiVersion", t.ApiVersion()},
                           {"kind", t.kind},
                           {"metadata", {{"resourceVersion", std::to_string(w.cursor)}}}};
          out += EventLine("BOOKMARK", bookmark);
          w.next_bookmark = now + options_.bookmark_interval;
        }
        w.bookmark_now = false;
        if (now >= w.deadline) finish = true;
      }
    }
    size_t split = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      split = split_chunks_;
    }
    for (size_t at = 0; at < out.size();) {
      size_t n = split == 0 ? out.size() - at : std::min(split, out.size() - at);
      if (!sink.write(out.data() + at, n)) return false;
      at += n;
    }
    if (finish) sink.done();
    return true;
  }

  // ---------------------------------------------------------------- HTTP
  void Reply(httplib::Response& res, int code, const json& body) {
    res.status = code;
    res.set_content(body.dump(), "application/json");
  }
  void Fail(httplib::Response& res, int code, const std::string& message) {
    Reply(res, code, StatusObject(code, ReasonFor(code), message));
  }
  void Fail(httplib::Response& res, const absl::Status& s) {
    const int code = FromStatus(s);
    // A create that collides answers 409 with reason AlreadyExists; a stale
    // resourceVersion answers 409 Conflict.
    const std::string reason = s.code() == absl::StatusCode::kAlreadyExists ? "AlreadyExists" : ReasonFor(code);
    Reply(res, code, StatusObject(code, reason, std::string(s.message())));
  }

  // Authentication and injected failures; false when the request was answered.
  bool Admit(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string line = absl::StrCat(req.method, " ", req.path);
    if (!req.params.empty()) {
      std::vector<std::string> parts;
      for (const auto& [k, v] : req.params) parts.push_back(k + "=" + v);
      absl::StrAppend(&line, "?", absl::StrJoin(parts, "&"));
    }
    request_log_.push_back(line);
    if (!options_.api_tokens.empty() && options_.client_ca_pem.empty()) {
      std::string auth = req.get_header_value("Authorization");
      if (!absl::StartsWith(auth, "Bearer ") || options_.api_tokens.count(auth.substr(7)) == 0) {
        Fail(res, 401, "Unauthorized");
        return false;
      }
    }
    if (fail_count_ > 0) {
      --fail_count_;
      Fail(res, fail_code_, "injected failure");
      return false;
    }
    return true;
  }

  struct Target {
    int type = -1;
    std::string ns;    // namespace from the path ("" for all)
    std::string name;  // "" for the collection
    bool status = false;
  };

  // Parses /api/v1/... and /apis/GROUP/VERSION/...
  std::optional<Target> Route(const std::string& path, int* code) {
    std::vector<std::string> segs = absl::StrSplit(path, '/', absl::SkipEmpty());
    std::string group, version;
    size_t i = 0;
    if (segs.size() >= 2 && segs[0] == "api") {
      version = segs[1];
      i = 2;
    } else if (segs.size() >= 3 && segs[0] == "apis") {
      group = segs[1];
      version = segs[2];
      i = 3;
    } else {
      *code = 404;
      return std::nullopt;
    }
    std::vector<std::string> rest(segs.begin() + static_cast<long>(i), segs.end());
    Target t;
    if (rest.size() >= 3 && rest[0] == "namespaces" && rest[2] != "status") {
      t.ns = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (rest.empty() || rest.size() > 3 || (rest.size() == 3 && rest[2] != "status")) {
      *code = 404;
      return std::nullopt;
    }
    t.type = TypeIndexByPlural(group, version, rest[0]);
    if (t.type < 0 || !ServedLocked(t.type) || (!t.ns.empty() && !types_[t.type].namespaced)) {
      *code = 404;
      return std::nullopt;
    }
    if (rest.size() >= 2) t.name = rest[1];
    t.status = rest.size() == 3;
    if (t.status && !types_[t.type].status_subresource) {
      *code = 404;
      return std::nullopt;
    }
    return t;
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    if (!Admit(req, res)) return;
    std::unique_lock<std::mutex> lock(mu_);
    int code = 404;
    std::optional<Target> t = Route(req.path, &code);
    if (!t) {
      lock.unlock();
      Fail(res, 404, "the server could not find the requested resource");
      return;
    }
    const FakeResourceType& type = types_[t->type];
    if (req.method == "GET" && t->name.empty()) {
      std::string watch = req.get_param_value("watch");
      if (watch == "true" || watch == "1") {
        StartWatchLocked(req, res, *t);
      } else {
        ListLocked(req, res, *t);
      }
      return;
    }
    if (t->name.empty() && req.method != "POST") {
      Fail(res, 405, "method not allowed on a collection");
      return;
    }
    if (req.method == "POST") {
      if (!t->name.empty()) {
        Fail(res, 405, "method not allowed");
        return;
      }
      json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        Fail(res, 400, "the request body is not a JSON object");
        return;
      }
      if (type.namespaced) {
        if (t->ns.empty()) {
          Fail(res, 404, "the server could not find the requested resource");
          return;
        }
        if (body["metadata"].is_object() && body["metadata"].contains("namespace") &&
            body["metadata"]["namespace"] != t->ns) {
          Fail(res, 400, "the namespace of the provided object does not match the namespace sent on the request");
          return;
        }
        body["metadata"]["namespace"] = t->ns;
      }
      auto created = CreateLocked(std::move(body));
      if (!created.ok()) return Fail(res, created.status());
      return Reply(res, 201, *created);
    }
    const std::string ns = type.namespaced ? (t->ns.empty() ? std::string("\x01") : t->ns) : "";
    auto it = objects_[t->type].find(Key(ns, t->name));
    if (it == objects_[t->type].end()) {
      return Fail(res, 404, absl::StrCat(type.plural, " \"", t->name, "\" not found"));
    }
    if (req.method == "GET") return Reply(res, 200, it->second);
    if (req.method == "DELETE") {
      absl::Status s = DeleteLocked(t->type, ns, t->name);
      if (!s.ok()) return Fail(res, s);
      return Reply(res, 200,
                   json{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()},
                        {"status", "Success"}, {"details", {{"name", t->name}, {"kind", type.plural}}}});
    }
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return Fail(res, 400, "the request body is not a JSON object");
    json next;
    if (req.method == "PUT") {
      next = std::move(body);
      next["apiVersion"] = type.ApiVersion();
      next["kind"] = type.kind;
      if (!next.contains("metadata") || !next["metadata"].is_object()) next["metadata"] = json::object();
      if (next["metadata"].value("name", t->name) != t->name) {
        return Fail(res, 400, "the name of the object does not match the name on the URL");
      }
      next["metadata"]["name"] = t->name;
      if (type.namespaced) next["metadata"]["namespace"] = ns;
    } else if (req.method == "PATCH") {
      std::string content_type = req.get_header_value("Content-Type");
      if (!absl::StartsWith(content_type, "application/merge-patch+json")) {
        // JSON patch and strategic merge patch are not implemented by the fake
        // (strategic merge patch is not supported for custom resources anyway).
        return Fail(res, 415, absl::StrCat("the fake API server supports only application/merge-patch+json, not ",
                                           content_type));
      }
      next = it->second;
      next.merge_patch(body);
    } else {
      return Fail(res, 405, "method not allowed");
    }
    auto updated = UpdateLocked(std::move(next), t->status, req.method == "PUT");
    if (!updated.ok()) return Fail(res, updated.status());
    Reply(res, 200, *updated);
  }

  void ListLocked(const httplib::Request& req, httplib::Response& res, const Target& t) {
    ++list_requests_;
    const FakeResourceType& type = types_[t.type];
    uint64_t snapshot_rv = rv_;
    std::string start_after;
    const std::string cont = req.get_param_value("continue");
    if (!cont.empty()) {
      std::string raw;
      json token;
      if (!absl::WebSafeBase64Unescape(cont, &raw) || (token = json::parse(raw, nullptr, false)).is_discarded() ||
          !token.is_object() || !token.contains("rv") || !token.contains("start")) {
        return Fail(res, 400, "continue key is not valid");
      }
      snapshot_rv = token["rv"].get<uint64_t>();
      start_after = token["start"].get<std::string>();
      if (snapshot_rv < compacted_rv_) {
        json status = StatusObject(
            410, "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new "
            "list without the continue parameter.");
        return Reply(res, 410, status);
      }
    } else if (std::string rv_param = req.get_param_value("resourceVersion");
               !rv_param.empty() && rv_param != "0") {
      uint64_t rv = 0;
      if (!absl::SimpleAtoi(rv_param, &rv)) return Fail(res, 400, "resourceVersion: Invalid value");
      if (rv > rv_) return Fail(res, 504, absl::StrCat("Too large resource version: ", rv, ", current: ", rv_));
      if (req.get_param_value("resourceVersionMatch") == "Exact") {
        if (rv < compacted_rv_) return Fail(res, 410, absl::StrCat("too old resource version: ", rv));
        snapshot_rv = rv;
      }
    }
    std::map<std::string, json> state = StateAtLocked(t.type, snapshot_rv);
    int64_t limit = 0;
    if (!req.get_param_value("limit").empty() && !absl::SimpleAtoi(req.get_param_value("limit"), &limit)) {
      return Fail(res, 400, "limit: Invalid value");
    }
    json items = json::array();
    std::string last_key;
    int64_t remaining = 0;
    for (auto it = start_after.empty() ? state.begin() : state.upper_bound(start_after); it != state.end(); ++it) {
      const json& meta = it->second["metadata"];
      if (!t.ns.empty() && meta.value("namespace", "") != t.ns) continue;
      if (limit > 0 && static_cast<int64_t>(items.size()) >= limit) {
        ++remaining;
        continue;
      }
      json item = it->second;
      if (!type.crd) {  // built-in types' list items carry no apiVersion/kind
        item.erase("apiVersion");
        item.erase("kind");
      }
      items.push_back(std::move(item));
      last_key = it->first;
    }
    json meta = {{"resourceVersion", std::to_string(snapshot_rv)}};
    if (remaining > 0) {
      meta["continue"] = absl::WebSafeBase64Escape(json{{"rv", snapshot_rv}, {"start", last_key}}.dump());
      meta["remainingItemCount"] = remaining;
    }
    Reply(res, 200, json{{"apiVersion", type.ApiVersion()}, {"kind", type.kind + "List"}, {"metadata", meta},
                         {"items", std::move(items)}});
  }

  void StartWatchLocked(const httplib::Request& req, httplib::Response& res, const Target& t) {
    ++watch_requests_;
    auto w = std::make_shared<Watch>();
    w->type = t.type;
    w->ns = t.ns;
    w->bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
    const auto now = SteadyClock::now();
    w->next_bookmark = now + options_.bookmark_interval;
    int64_t timeout = 0;
    if (!absl::SimpleAtoi(req.get_param_value("timeoutSeconds"), &timeout) || timeout <= 0) {
      timeout = 1800;  // the server's own default range is 30-60 minutes
    }
    w->deadline = now + std::chrono::seconds(timeout);
    std::string rv_param = req.get_param_value("resourceVersion");
    if (rv_param.empty() || rv_param == "0") {
      // Get state and start at most recent: synthetic ADDED events first.
      const FakeResourceType& type = types_[t.type];
      for (const auto& [key, o] : objects_[t.type]) {
        if (!t.ns.empty() && o["metadata"].value("namespace", "") != t.ns) continue;
        json object = o;
        object["apiVersion"] = type.ApiVersion();
        object["kind"] = type.kind;
        w->initial.push_back(std::move(object));
      }
      w->cursor = rv_;
    } else if (!absl::SimpleAtoi(rv_param, &w->cursor)) {
      return Fail(res, 400, "resourceVersion: Invalid value");
    }
    watches_.insert(w);
    res.status = 200;
    // Not "application/json": cpp-httplib would gzip (and buffer) a
    // compressible type; the API server never compresses watch streams.
    res.set_chunked_content_provider(
        "application/json;stream=watch", [this, w](size_t, httplib::DataSink& sink) { return Pump(*w, sink); },
        [this, w](bool) {
          std::lock_guard<std::mutex> lock(mu_);
          watches_.erase(w);
        });
  }

  void HandleTokenReview(const httplib::Request& req, httplib::Response& res) {
    if (!Admit(req, res)) return;
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || body.value("kind", "") != "TokenReview" ||
        !body.contains("spec") || !body["spec"].is_object()) {
      return Fail(res, 400, "the request body must be a TokenReview");
    }
    const std::string token = body["spec"].value("token", "");
    std::vector<std::string> wanted;
    if (body["spec"].contains("audiences") && body["spec"]["audiences"].is_array()) {
      for (const auto& a : body["spec"]["audiences"]) {
        if (a.is_string()) wanted.push_back(a);
      }
    }
    const bool audiences_given = !wanted.empty();
    if (wanted.empty()) wanted = options_.api_audiences;
    json status = {{"user", json::object()}};
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tokens_.find(token);
    if (token.empty() || it == tokens_.end()) {
      status["authenticated"] = false;
      status["error"] = "[invalid bearer token, token lookup failed]";
    } else if (it->second.expired) {
      status["authenticated"] = false;
      status["error"] = "[invalid bearer token, Token has expired.]";
    } else {
      std::vector<std::string> issued = it->second.audiences.empty() ? options_.api_audiences : it->second.audiences;
      std::vector<std::string> both;
      for (const auto& a : wanted) {
        if (std::find(issued.begin(), issued.end(), a) != issued.end()) both.push_back(a);
      }
      if (both.empty()) {
        status["authenticated"] = false;
        status["error"] = "[invalid bearer token, token audiences is invalid for the target audiences]";
      } else {
        status["authenticated"] = true;
        status["user"] = {{"username", it->second.username}, {"uid", it->second.uid}, {"groups", it->second.groups}};
        if (audiences_given) status["audiences"] = both;
      }
    }
    body["status"] = status;
    body["metadata"] = {{"creationTimestamp", nullptr}};
    Reply(res, 201, body);
  }

  void HandleControl(const httplib::Request& req, httplib::Response& res);

  FakeApiServerOptions options_;
  std::vector<FakeResourceType> types_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t rv_ = 100;
  uint64_t compacted_rv_ = 0;
  uint64_t uid_counter_ = 100000000000;
  std::map<int, std::map<std::string, json>> objects_;
  std::deque<Event> events_;
  std::set<std::shared_ptr<Watch>> watches_;
  std::set<std::string> uninstalled_groups_;
  std::map<std::string, FakeTokenInfo> tokens_;
  SteadyClock::time_point stall_until_{};
  size_t split_chunks_ = 0;
  int fail_count_ = 0;
  int fail_code_ = 500;
  int watch_requests_ = 0;
  int list_requests_ = 0;
  std::vector<std::string> request_log_;
};

FakeApiServer::FakeApiServer(FakeApiServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

FakeApiServer::~FakeApiServer() { Stop(); }

absl::Status FakeApiServer::Start() {
  Impl& impl = *impl_;
  const auto& o = impl.options_;
  if (!o.tls_cert_pem.empty()) {
    X509* cert = ParseCert(o.tls_cert_pem);
    EVP_PKEY* key = ParseKey(o.tls_key_pem);
    if (cert == nullptr || key == nullptr) {
      if (cert) X509_free(cert);
      if (key) EVP_PKEY_free(key);
      return absl::InvalidArgumentError("fake API server: bad TLS certificate or key");
    }
    X509_STORE* client_ca = o.client_ca_pem.empty() ? nullptr : ParseStore(o.client_ca_pem);
    impl.server_ = std::make_unique<httplib::SSLServer>(cert, key, client_ca);
    X509_free(cert);
    EVP_PKEY_free(key);
  } else {
    impl.server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *impl.server_;
  if (!server.is_valid()) return absl::InternalError("fake API server: cannot set up the server");
  const int threads = o.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server.set_read_timeout(30, 0);
  server.set_write_timeout(5, 0);
  auto handle = [&impl](const httplib::Request& req, httplib::Response& res) { impl.Handle(req, res); };
  server.Post("/apis/authentication.k8s.io/v1/tokenreviews",
              [&impl](const httplib::Request& req, httplib::Response& res) { impl.HandleTokenReview(req, res); });
  server.Post(R"(/fake/.*)",
              [&impl](const httplib::Request& req, httplib::Response& res) { impl.HandleControl(req, res); });
  for (const char* pattern : {R"(/api/.*)", R"(/apis/.*)"}) {
    server.Get(pattern, handle);
    server.Post(pattern, handle);
    server.Put(pattern, handle);
    server.Patch(pattern, handle);
    server.Delete(pattern, handle);
  }
  int port = o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0) return absl::UnavailableError(absl::StrCat("fake API server: cannot listen on ", o.host));
  port_ = port;
  impl.thread_ = std::thread([&server] { server.listen_after_bind(); });
  return absl::OkStatus();
}

void FakeApiServer::Stop() {
  if (!impl_->server_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->stopping_ = true;
    impl_->cv_.notify_all();
  }
  impl_->server_->stop();
  if (impl_->thread_.joinable()) impl_->thread_.join();
  impl_->server_.reset();
}

std::string FakeApiServer::Url() const {
  return absl::StrCat(impl_->options_.tls_cert_pem.empty() ? "http" : "https", "://", impl_->options_.host, ":",
                      port_);
}

absl::StatusOr<json> FakeApiServer::Create(json object) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->CreateLocked(std::move(object));
}

absl::StatusOr<json> FakeApiServer::Update(json object) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->UpdateLocked(std::move(object), false, true);
}

absl::StatusOr<json> FakeApiServer::Apply(json object) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  json copy = object;
  auto typed = impl_->Identify(copy);
  if (!typed.ok()) return typed.status();
  auto [type, ns, name] = *typed;
  if (impl_->objects_[type].count(Key(ns, name)) > 0) {
    if (copy["metadata"].is_object()) copy["metadata"].erase("resourceVersion");
    return impl_->UpdateLocked(std::move(copy), false, false);
  }
  return impl_->CreateLocked(std::move(copy));
}

absl::Status FakeApiServer::Delete(const std::string& api_version, const std::string& kind, const std::string& ns,
                                   const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  int type = impl_->TypeIndex(api_version, kind);
  if (type < 0) return absl::NotFoundError(absl::StrCat("no kind ", kind, " in ", api_version));
  const std::string n = impl_->types_[type].namespaced ? (ns.empty() ? "default" : ns) : "";
  return impl_->DeleteLocked(type, n, name);
}

std::optional<json> FakeApiServer::Get(const std::string& api_version, const std::string& kind, const std::string& ns,
                                       const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  int type = impl_->TypeIndex(api_version, kind);
  if (type < 0) return std::nullopt;
  const std::string n = impl_->types_[type].namespaced ? (ns.empty() ? "default" : ns) : "";
  auto& items = impl_->objects_[type];
  auto it = items.find(Key(n, name));
  if (it == items.end()) return std::nullopt;
  return it->second;
}

std::vector<json> FakeApiServer::List(const std::string& api_version, const std::string& kind) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  std::vector<json> out;
  int type = impl_->TypeIndex(api_version, kind);
  if (type < 0) return out;
  for (const auto& [key, o] : impl_->objects_[type]) out.push_back(o);
  return out;
}

void FakeApiServer::AddToken(const std::string& token, FakeTokenInfo info) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->tokens_[token] = std::move(info);
}

void FakeApiServer::SetGroupInstalled(const std::string& group, bool installed) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  if (installed) {
    impl_->uninstalled_groups_.erase(group);
  } else {
    impl_->uninstalled_groups_.insert(group);
  }
  impl_->cv_.notify_all();
}

void FakeApiServer::DropWatches() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  for (const auto& w : impl_->watches_) w->drop = true;
  impl_->cv_.notify_all();
}

void FakeApiServer::ExpireWatches() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  for (const auto& w : impl_->watches_) w->expire = true;
  impl_->cv_.notify_all();
}

void FakeApiServer::Compact() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->compacted_rv_ = impl_->rv_;
  impl_->events_.clear();
  impl_->cv_.notify_all();
}

void FakeApiServer::StallWatches(std::chrono::milliseconds duration) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->stall_until_ = SteadyClock::now() + duration;
}

void FakeApiServer::FailNextRequests(int count, int code) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->fail_count_ = count;
  impl_->fail_code_ = code;
}

void FakeApiServer::SendBookmarks() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  for (const auto& w : impl_->watches_) w->bookmark_now = true;
  impl_->cv_.notify_all();
}

void FakeApiServer::SplitWatchChunks(size_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->split_chunks_ = bytes;
}

uint64_t FakeApiServer::resource_version() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->rv_;
}

int FakeApiServer::open_watches() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return static_cast<int>(impl_->watches_.size());
}

int FakeApiServer::watch_requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->watch_requests_;
}

int FakeApiServer::list_requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->list_requests_;
}

std::vector<std::string> FakeApiServer::RequestLog() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->request_log_;
}

const std::vector<FakeResourceType>& FakeApiServer::types() const { return impl_->types_; }

// POST /fake/{drop-watches,expire-watches,compact,bookmarks,stall?ms=,fail?count=&code=,
// uninstall?group=,install?group=}: the fault injection of the C++ API, for
// tests that run the fake as a separate process.
void FakeApiServer::Impl::HandleControl(const httplib::Request& req, httplib::Response& res) {
  const std::string what = req.path.substr(6);
  auto param = [&](const char* k, int def) {
    int v = def;
    if (!absl::SimpleAtoi(req.get_param_value(k), &v)) v = def;
    return v;
  };
  std::lock_guard<std::mutex> lock(mu_);
  if (what == "drop-watches") {
    for (const auto& w : watches_) w->drop = true;
  } else if (what == "expire-watches") {
    for (const auto& w : watches_) w->expire = true;
  } else if (what == "compact") {
    compacted_rv_ = rv_;
    events_.clear();
  } else if (what == "bookmarks") {
    for (const auto& w : watches_) w->bookmark_now = true;
  } else if (what == "stall") {
    stall_until_ = SteadyClock::now() + std::chrono::milliseconds(param("ms", 1000));
  } else if (what == "fail") {
    fail_count_ = param("count", 1);
    fail_code_ = param("code", 500);
  } else if (what == "uninstall" || what == "install") {
    if (what == "install") {
      uninstalled_groups_.erase(req.get_param_value("group"));
    } else {
      uninstalled_groups_.insert(req.get_param_value("group"));
    }
  } else {
    return Fail(res, 404, "unknown control endpoint " + req.path);
  }
  cv_.notify_all();
  Reply(res, 200, json{{"ok", true}, {"resourceVersion", std::to_string(rv_)}});
}

}  // namespace weft::fake_kube
