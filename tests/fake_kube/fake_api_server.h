// A fake Kubernetes API server for tests: a real HTTP(S) server (cpp-httplib,
// port 0) that serves the parts of the Kubernetes REST API Weft relies on,
// written from the Kubernetes API documentation ("API Concepts": efficient
// detection of changes, resource versions, retrieving large results in
// chunks, watch bookmarks), not from Weft's client:
//
//   GET    /api/v1/{plural}, /apis/{g}/{v}/{plural}            list (all namespaces)
//   GET    .../namespaces/{ns}/{plural}                         list in one namespace
//          ?limit=&continue=       pagination from a consistent snapshot; a stale continue -> 410 Expired
//          ?resourceVersion=&resourceVersionMatch=              NotOlderThan / Exact (compacted -> 410)
//          ?watch=true&resourceVersion=&allowWatchBookmarks=&timeoutSeconds=
//                                  newline-delimited JSON events ADDED/MODIFIED/DELETED/BOOKMARK/ERROR;
//                                  from a compacted version: an ERROR event with a 410 Status
//   GET/POST/PUT/PATCH/DELETE on items; PUT/PATCH on .../{name}/status (status subresource)
//   POST   /apis/authentication.k8s.io/v1/tokenreviews          from a configurable token table
//
// One global, monotonically increasing resourceVersion; compaction forgets
// history below a version; CRD groups can be "uninstalled" (404). Fault
// injection: drop watches mid-stream, stall them, answer errors, expire
// versions. Tests drive it through the C++ API below or over HTTP (the
// fake-kube-apiserver executable adds /fake/* control endpoints).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft::fake_kube {

struct FakeTokenInfo {
  std::string username;  // system:serviceaccount:NS:SA
  std::string uid;
  std::vector<std::string> groups;
  // Audiences the token was issued for; empty: the API server's own.
  std::vector<std::string> audiences;
  bool expired = false;
};

struct FakeApiServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  // TLS when set (PEM): the server's certificate and key; with
  // client_ca_pem, client certificates are required and verified.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string client_ca_pem;
  // When non-empty, requests must carry one of these bearer tokens (or a
  // verified client certificate): 401 otherwise.
  std::set<std::string> api_tokens;
  // Audiences of the API server itself: TokenReview with no audiences checks
  // tokens against these.
  std::vector<std::string> api_audiences = {"https://kubernetes.default.svc.cluster.local"};
  // How often an open watch that asked for bookmarks gets one.
  std::chrono::milliseconds bookmark_interval{1000};
  // Worker threads: each open watch holds one.
  int threads = 64;
};

// A resource type the fake serves.
struct FakeResourceType {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1"
  std::string kind;
  std::string plural;
  bool namespaced = true;
  bool status_subresource = false;
  bool crd = false;  // served only while its group is installed
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiServerOptions options = {});
  ~FakeApiServer();  // Stop()s
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Binds (port 0 picks a free port) and serves from a background thread.
  absl::Status Start();
  void Stop();
  int port() const { return port_; }
  // "http://127.0.0.1:PORT" or "https://..."
  std::string Url() const;

  // --- Objects (the same rules as over HTTP). `object` carries apiVersion,
  // kind and metadata; the stored object (with resourceVersion, uid, ...)
  // comes back.
  absl::StatusOr<nlohmann::json> Create(nlohmann::json object);
  // Replaces spec and metadata (not status when the type has a status
  // subresource); a metadata.resourceVersion in `object` must match.
  absl::StatusOr<nlohmann::json> Update(nlohmann::json object);
  // Create or Update, ignoring resourceVersion.
  absl::StatusOr<nlohmann::json> Apply(nlohmann::json object);
  absl::Status Delete(const std::string& api_version, const std::string& kind, const std::string& ns,
                      const std::string& name);
  std::optional<nlohmann::json> Get(const std::string& api_version, const std::string& kind,
                                    const std::string& ns, const std::string& name) const;
  // Every stored object of a type, sorted by namespace/name.
  std::vector<nlohmann::json> List(const std::string& api_version, const std::string& kind) const;

  // --- TokenReview.
  void AddToken(const std::string& token, FakeTokenInfo info);

  // --- CRDs: while a group is uninstalled, its types answer 404.
  void SetGroupInstalled(const std::string& group, bool installed);

  // --- Fault injection.
  // Closes every open watch stream abruptly (no final chunk).
  void DropWatches();
  // Sends an ERROR event with a 410 Status to every open watch, then ends it
  // (what a real server does to a watcher that fell too far behind).
  void ExpireWatches();
  // Forgets history: watches and lists from a version below the current one
  // get 410 Gone; continue tokens issued before expire.
  void Compact();
  // Open watches send nothing until `duration` from now.
  void StallWatches(std::chrono::milliseconds duration);
  // The next `count` API requests (not /fake/*) answer `code` (e.g. 500).
  void FailNextRequests(int count, int code = 500);
  // Every open watch that allowed bookmarks gets one now.
  void SendBookmarks();
  // Watch output goes out in HTTP chunks of at most `bytes` (0: one chunk
  // per batch of events), so that events straddle chunk boundaries.
  void SplitWatchChunks(size_t bytes);

  // --- Observation.
  uint64_t resource_version() const;
  int open_watches() const;
  int watch_requests() const;
  int list_requests() const;
  // Every request line served, "METHOD /path?query", for assertions.
  std::vector<std::string> RequestLog() const;
  const std::vector<FakeResourceType>& types() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace weft::fake_kube
