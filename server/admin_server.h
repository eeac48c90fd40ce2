// weftd's admin REST API (DESIGN.md §6): health, readiness, Prometheus
// metrics and the JSON views of proxies, their configuration, services and
// policies. Each handler parses its parameters, computes from the current
// state and renders JSON. Served by cpp-httplib on its own threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "ca/ca_view.h"
#include "ca/issued_certificate_log.h"
#include "common/metrics.h"
#include "server/config_publisher.h"
#include "server/proxy_tracker.h"

namespace httplib {
class Server;
}

namespace weft::ca {
class CertificateAuthority;
}

namespace weft::server {

struct AdminOptions {
  std::string host = "127.0.0.1";
  int port = 15014;
  // When set, every endpoint but /healthz and /readyz requires
  // `Authorization: Bearer <token>`.
  std::string token;
};

class AdminServer {
 public:
  AdminServer(AdminOptions options, ConfigPublisher& publisher, ProxyTracker& tracker,
              common::MetricsRegistry& metrics);
  ~AdminServer();

  // Binds and starts serving in the background; the bound port is port().
  absl::Status Start();
  void Stop();
  int port() const { return bound_port_; }

  // Serves GET /api/v1/certificates, POST /api/v1/certificates/rotate and
  // the CA's expiry gauges on /metrics. Call before Start(); `ca` outlives
  // the server.
  void SetCertificateAuthority(ca::CertificateAuthority* ca) { ca_ = ca; }

 private:
  void Route();

  const AdminOptions options_;
  ConfigPublisher& publisher_;
  ProxyTracker& tracker_;
  common::MetricsRegistry& metrics_;
  ca::CertificateAuthority* ca_ = nullptr;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int bound_port_ = 0;
};

// The JSON bodies, exposed for tests.
std::string RenderProxies(const std::vector<ProxyStatus>& proxies);
// An Envoy config dump (envoy.admin.v3.ConfigDump) of what the proxy holds.
std::string RenderConfigDump(const ProxyStatus& proxy);
// GET /api/v1/certificates: the roots (with expiry), the signing
// intermediate, the rotation state and the most recent issued certificates.
std::string RenderCertificates(const ca::CaView& view, const std::vector<ca::IssuedRecord>& recent,
                               uint64_t issued_total, std::chrono::system_clock::time_point now);

}  // namespace weft::server
