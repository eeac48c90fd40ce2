// weft-proxy's ADS client: one gRPC stream (proxy/grpc_call.h) to weftd's TLS port (the mesh
// certificate as the client certificate), delta xDS first and
// state-of-the-world when the server does not implement delta. Every
// response is applied to a copy of what the proxy holds and validated as a
// whole (ProxyConfig::Build); it is ACKed and published, or NACKed with the
// error and dropped, so the last good configuration stays in force. The
// stream is reopened with exponential backoff and jitter; traffic is served
// from the last configuration meanwhile. Runs on its own thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "envoy/config/core/v3/base.pb.h"
#include "proxy/proxy_config.h"
#include "proxy/workload_certificate.h"

namespace weft::proxy {

class GrpcCall;

class XdsClient {
 public:
  struct Options {
    std::string target;       // HOST:PORT
    std::string server_name;  // TLS name override
    envoy::config::core::v3::Node node;
    bool prefer_delta = true;
  };
  struct Status {
    bool connected = false;
    std::string protocol;  // "delta" | "sotw"
    std::map<std::string, std::string> versions;  // type → last accepted version
    std::map<std::string, std::string> last_nack;  // type → error
    uint64_t updates = 0;
    uint64_t rejected = 0;
  };
  using ConfigCallback = std::function<void(ProxyConfigConstSharedPtr)>;

  XdsClient(Options options, WorkloadCertificate& certificate, common::MetricsRegistry& metrics,
            ConfigCallback on_config);
  ~XdsClient();
  void Start();
  void Stop();
  Status GetStatus() const;
  // True once clusters and listeners have been received at least once.
  bool HasInitialConfig() const { return initial_config_.load(); }

 private:
  class Stream;
  void Run();
  // Returns false when the server does not implement the protocol.
  bool RunDelta();
  void RunSotw();
  // Applies a change to a copy of the held resources; publishes it or
  // returns the error for the NACK.
  absl::Status Apply(const std::string& type_url, const std::function<void(XdsResources&)>& change);
  void SetCall(GrpcCall* call);

  Options options_;
  WorkloadCertificate& certificate_;
  common::MetricsRegistry& metrics_;
  ConfigCallback on_config_;
  std::thread thread_;
  std::atomic<bool> initial_config_{false};
  std::atomic<bool> stopping_{false};

  mutable absl::Mutex mu_;
  GrpcCall* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  Status status_ ABSL_GUARDED_BY(mu_);
  absl::CondVar wake_;
  XdsResources held_;  // only the client thread touches it
};

}  // namespace weft::proxy
