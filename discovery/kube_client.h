// The HTTP(S) transport to the Kubernetes API server, on cpp-httplib and
// OpenSSL: plain requests (list, get, status writes, TokenReview) and
// streamed GETs (watches). Authenticates with the KubeConfig's client
// certificate or bearer token (a token file is re-read when it changes);
// always verifies the server's certificate and name when the scheme is
// https. Used by the watchers, KubeStatusWriter and KubeTokenReviewer;
// thread-safe. No httplib type appears here.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "discovery/kube_config.h"

namespace weft::discovery {

struct KubeResponse {
  int status = 0;
  std::string body;
};

struct KubeClientOptions {
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds request_timeout{30};  // per read on plain requests
  std::string user_agent = "weftd";
};

class KubeClient {
 public:
  // Checks that the configuration's PEM material parses; no I/O otherwise.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(KubeConfig config, KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // One request. A transport failure (refused, reset, TLS verification) is
  // an Unavailable status naming the server; any HTTP answer, errors
  // included, is a KubeResponse. `path` includes the query string.
  absl::StatusOr<KubeResponse> Request(const std::string& method, const std::string& path,
                                       const std::string& body = "", const std::string& content_type = "");

  // A GET whose body is handed to `on_data` as it arrives (a watch). Sets
  // `*status` as soon as the headers arrive; `on_data` returning false ends
  // the stream. Returns OK when the server ended the stream cleanly,
  // Unavailable when it broke (dropped connection, `read_timeout` without a
  // byte), Cancelled after Shutdown().
  absl::Status Stream(const std::string& path, std::chrono::seconds read_timeout, int* status,
                      const std::function<bool(std::string_view)>& on_data);

  // Aborts the requests in flight and fails every later one (Cancelled).
  void Shutdown();

  const KubeConfig& config() const { return config_; }

 private:
  class Connection;
  KubeClient(KubeConfig config, KubeClientOptions options);
  std::string CurrentToken();
  std::unique_ptr<Connection> Connect(std::chrono::seconds read_timeout);
  // Registers a connection for Shutdown(); false when shut down already.
  bool Track(Connection* c);
  void Untrack(Connection* c);

  const KubeConfig config_;
  const KubeClientOptions options_;

  absl::Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);
  int64_t token_mtime_ns_ ABSL_GUARDED_BY(token_mu_) = -1;
  int64_t token_size_ ABSL_GUARDED_BY(token_mu_) = -1;

  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::set<Connection*> active_ ABSL_GUARDED_BY(mu_);
};

using KubeClientPtr = std::unique_ptr<KubeClient>;

}  // namespace weft::discovery
