// weft-proxy's data path: the outbound listener (plain HTTP/1.1 from the
// local app, routed by absolute-form URI or Host through the outbound route
// table to a cluster's endpoint over mTLS, or passed through) and the
// inbound listener (mTLS from peer sidecars, or plaintext where the listener
// allows it, forwarded to --app-addr with x-forwarded-client-cert). A few
// worker threads each run one Asio io_context; every connection is one
// coroutine on one worker, with that worker's upstream connection pool and
// load-balancer state, so the data path takes no locks except to read the
// current configuration pointer.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "proxy/proxy_config.h"

namespace weft::proxy {

struct TlsContexts;

class ProxyServer {
 public:
  struct Options {
    std::string outbound_addr = "127.0.0.1:15001";
    std::string inbound_addr = "0.0.0.0:15006";
    std::string app_addr = "127.0.0.1:8080";
    int workers = 2;
    bool registry_only = false;  // --outbound-policy=REGISTRY_ONLY
    std::string access_log;      // --access-log: a file, "-" for stdout, "" for none
  };
  ProxyServer(Options options, common::MetricsRegistry& metrics);
  ~ProxyServer();

  // Binds both listeners (a clear error when an address is taken) and
  // starts the workers.
  absl::Status Start();
  void Stop();
  // Graceful shutdown (SIGTERM), before Stop(): the inbound listener closes
  // (peers' connects fail and are retried elsewhere), connections waiting
  // for a request are closed, and every response from now on carries
  // "Connection: close", so a connection in the middle of a request closes
  // after its response. The outbound listener keeps serving the app while it
  // shuts down. Returns once no downstream connection is left (true) or
  // `timeout` has passed (false).
  bool Drain(std::chrono::milliseconds timeout);
  bool draining() const;

  void SetConfig(ProxyConfigConstSharedPtr config);
  void SetTls(std::shared_ptr<const TlsContexts> tls);
  ProxyConfigConstSharedPtr config() const;
  std::shared_ptr<const TlsContexts> tls() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// "host:port" → (host, port); InvalidArgument when it is not that.
absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& addr);

}  // namespace weft::proxy
