// weft-proxy: Weft's reference sidecar (DESIGN.md §3, docs/proxy.md).
// Wiring only: flags → workload certificate → data path and admin → xDS.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/runtime.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "proxy/admin_server.h"
#include "proxy/byte_stream.h"
#include "proxy/openssl_memory.h"
#include "proxy/proxy_server.h"
#include "proxy/workload_certificate.h"
#include "proxy/xds_client.h"

ABSL_FLAG(std::string, xds, "127.0.0.1:15012", "weftd's TLS xDS/CA address, HOST:PORT");
ABSL_FLAG(std::string, xds_server_name, "", "TLS name to expect in weftd's certificate (default: the --xds host)");
ABSL_FLAG(std::string, node_id, "", "xDS node id (default sidecar~<inbound ip>~weft-proxy.<ns>~<ns>.svc.cluster.local)");
ABSL_FLAG(std::string, namespace, "default", "the workload's namespace");
ABSL_FLAG(std::string, service_account, "default", "the workload's service account");
ABSL_FLAG(std::string, token_file, "", "file holding the bearer token for CreateCertificate");
ABSL_FLAG(std::string, trust_bundle, "", "PEM roots that authenticate weftd (file mode: <ca-dir>/root-cert.pem)");
ABSL_FLAG(std::string, trust_domain, "cluster.local", "SPIFFE trust domain");
ABSL_FLAG(std::string, outbound_addr, "127.0.0.1:15001", "outbound listener (the app's HTTP proxy)");
ABSL_FLAG(std::string, inbound_addr, "0.0.0.0:15006", "inbound listener (peer sidecars)");
ABSL_FLAG(std::string, admin_addr, "127.0.0.1:15000", "admin: /ready, /config_dump, /stats/prometheus");
ABSL_FLAG(std::string, app_addr, "127.0.0.1:8080", "where inbound requests go");
ABSL_FLAG(std::string, outbound_policy, "ALLOW_ANY", "ALLOW_ANY | REGISTRY_ONLY for hosts outside the mesh");
ABSL_FLAG(std::string, instance_ip, "", "the workload's IP for xDS (default: from --node-id, else --inbound-addr)");
ABSL_FLAG(int, concurrency, 2, "worker threads of the data path");
ABSL_FLAG(std::string, access_log, "",
          "one JSON line per request to this file (\"-\": stdout); off when empty");
ABSL_FLAG(bool, delta, true, "use incremental xDS (falls back to state of the world when unsupported)");
ABSL_FLAG(
    absl::Duration, drain_timeout, absl::Seconds(5),
    "on SIGTERM, how long in-flight requests may take before exit (like Istio's terminationDrainDuration); "
    "a second signal exits at once");

namespace weft::proxy {
namespace {

std::atomic<bool> g_stop{false};
absl::Notification g_stop_notification;

void OnSignal(int) {
  if (g_stop.exchange(true)) _exit(1);  // a second signal: no more draining
  g_stop_notification.Notify();
}

[[noreturn]] void Fail(const std::string& line) {
  fprintf(stderr, "weft-proxy: %s\n", line.c_str());
  exit(2);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string ConfigDump(const ProxyConfigConstSharedPtr& config, const XdsClient::Status& xds,
                       const WorkloadIdentityConstSharedPtr& id) {
  std::string out = "{\n\"xds\": {\"connected\": ";
  absl::StrAppend(&out, xds.connected ? "true" : "false", ", \"protocol\": ", JsonString(xds.protocol),
                  ", \"updates\": ", xds.updates, ", \"rejected\": ", xds.rejected, ", \"versions\": {");
  bool first = true;
  for (const auto& [t, v] : xds.versions) {
    absl::StrAppend(&out, first ? "" : ", ", JsonString(t), ": ", JsonString(v));
    first = false;
  }
  out += "}, \"last_nack\": {";
  first = true;
  for (const auto& [t, v] : xds.last_nack) {
    absl::StrAppend(&out, first ? "" : ", ", JsonString(t), ": ", JsonString(v));
    first = false;
  }
  out += "}},\n\"identity\": ";
  if (id) {
    absl::StrAppend(&out, "{\"spiffe_id\": ", JsonString(id->spiffe_id), ", \"generation\": ", id->generation,
                    ", \"not_after\": ", std::chrono::duration_cast<std::chrono::seconds>(id->not_after.time_since_epoch()).count(),
                    "}");
  } else {
    out += "null";
  }
  out += ",\n\"configs\": [";
  if (config) {
    // JSON needs the descriptors of every type the resources hold (most of
    // Envoy's API, ~1.2 MB). They are built in a pool of this dump's own,
    // from the generated files' descriptor database, and freed with it, so
    // that a /config_dump does not keep them for the life of the sidecar.
    google::protobuf::DescriptorPool pool(google::protobuf::DescriptorPool::internal_generated_database());
    std::unique_ptr<google::protobuf::util::TypeResolver> resolver(
        google::protobuf::util::NewTypeResolverForDescriptorPool("type.googleapis.com", &pool));
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    bool first_type = true;
    for (const auto& [type, resources] : config->resources().by_type) {
      absl::StrAppend(&out, first_type ? "\n" : ",\n", "{\"type\": ", JsonString(ShortType(type)),
                      ", \"resources\": [");
      first_type = false;
      bool first_res = true;
      for (const auto& [name, entry] : resources) {
        std::string json;
        if (!google::protobuf::util::BinaryToJsonString(resolver.get(),
                                                        "type.googleapis.com/google.protobuf.Any",
                                                        entry.resource.SerializeAsString(), &json, options)
                 .ok()) {
          json = "null";
        }
        absl::StrAppend(&out, first_res ? "\n" : ",\n", "{\"name\": ", JsonString(name), ", \"version\": ",
                        JsonString(entry.version), ", \"resource\": ", json, "}");
        first_res = false;
      }
      out += "]}";
    }
  }
  out += "]\n}\n";
  return out;
}

int Main(int argc, char** argv) {
  // Before anything uses OpenSSL (proxy/openssl_memory.h).
  if (!InstallOpenSslMemoryCache())
    WEFT_LOG(WARNING) << "OpenSSL allocated before its memory cache was installed";
  common::DisableMutexDeadlockDetection();
  absl::SetProgramUsageMessage("weft-proxy: Weft's reference sidecar");
  common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);

  // As many malloc arenas as data-path workers (glibc's default is eight
  // per core): memory a worker, the ADS thread or an admin request frees is
  // reused by the others instead of staying in an arena of its own
  // thread's. With one worker, the sidecar's peak RSS under 64 busy mTLS
  // connections after a /config_dump fell by 1.0-1.3 MB, together with the
  // dump's own descriptor pool (docs/benchmarks.md, "Session 7").
  // Before any thread starts.
  mallopt(M_ARENA_MAX, std::max(1, absl::GetFlag(FLAGS_concurrency)));

  const std::string ns = absl::GetFlag(FLAGS_namespace);
  const std::string sa = absl::GetFlag(FLAGS_service_account);
  if (absl::GetFlag(FLAGS_trust_bundle).empty()) Fail("--trust-bundle is required (the PEM roots of weftd)");
  if (absl::GetFlag(FLAGS_token_file).empty()) Fail("--token-file is required (the bearer token for CreateCertificate)");
  {
    std::ifstream t(absl::GetFlag(FLAGS_token_file));
    if (!t) Fail("--token-file: cannot read " + absl::GetFlag(FLAGS_token_file));
  }
  const std::string policy = absl::GetFlag(FLAGS_outbound_policy);
  if (policy != "ALLOW_ANY" && policy != "REGISTRY_ONLY") Fail("--outbound-policy must be ALLOW_ANY or REGISTRY_ONLY");
  auto inbound = ParseHostPort(absl::GetFlag(FLAGS_inbound_addr));
  if (!inbound.ok()) Fail("--inbound-addr: " + std::string(inbound.status().message()));

  std::string node_id = absl::GetFlag(FLAGS_node_id);
  std::string ip = absl::GetFlag(FLAGS_instance_ip);
  if (ip.empty() && !node_id.empty()) {
    std::vector<std::string> parts = absl::StrSplit(node_id, '~');
    if (parts.size() == 4) ip = parts[1];
  }
  if (ip.empty()) ip = inbound->first == "0.0.0.0" ? "127.0.0.1" : inbound->first;
  if (node_id.empty()) node_id = absl::StrCat("sidecar~", ip, "~weft-proxy.", ns, "~", ns, ".svc.cluster.local");
  const std::string spiffe_id = absl::StrCat("spiffe://", absl::GetFlag(FLAGS_trust_domain), "/ns/", ns, "/sa/", sa);

  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);

  common::MetricsRegistry metrics;
  WorkloadCertificate certificate({absl::GetFlag(FLAGS_xds), absl::GetFlag(FLAGS_xds_server_name),
                                   absl::GetFlag(FLAGS_trust_bundle), absl::GetFlag(FLAGS_token_file), spiffe_id, 0},
                                  metrics);
  ProxyServer::Options po;
  po.outbound_addr = absl::GetFlag(FLAGS_outbound_addr);
  po.inbound_addr = absl::GetFlag(FLAGS_inbound_addr);
  po.app_addr = absl::GetFlag(FLAGS_app_addr);
  po.workers = absl::GetFlag(FLAGS_concurrency);
  po.registry_only = policy == "REGISTRY_ONLY";
  po.access_log = absl::GetFlag(FLAGS_access_log);
  ProxyServer server(po, metrics);

  // Data-path TLS follows the certificate and the trust bundle (SDS ROOTCA
  // when weftd sends it, else the bundle CreateCertificate returned).
  absl::Mutex tls_mu;
  auto rebuild_tls = [&] {
    absl::MutexLock lock(&tls_mu);
    auto id = certificate.Current();
    if (!id) return;
    ProxyConfigConstSharedPtr cfg = server.config();
    std::string roots = cfg && !cfg->root_ca_pem().empty() ? cfg->root_ca_pem() : id->bundle_pem;
    auto cur = server.tls();
    if (cur && cur->generation == id->generation && cur->roots_pem == roots) return;
    auto tls = TlsContexts::Build(*id, roots);
    if (!tls.ok()) {
      WEFT_LOG(ERROR) << "TLS contexts: " << tls.status().message();
      return;
    }
    server.SetTls(*tls);
  };
  certificate.OnChange(rebuild_tls);

  envoy::config::core::v3::Node node;
  node.set_id(node_id);
  node.set_cluster(sa + "." + ns);
  node.set_user_agent_name("weft-proxy");
  node.set_user_agent_version("0.1.0");
  auto& md = *node.mutable_metadata()->mutable_fields();
  md["NAMESPACE"].set_string_value(ns);
  md["SERVICE_ACCOUNT"].set_string_value(sa);
  md["INSTANCE_IPS"].set_string_value(ip);
  XdsClient xds({absl::GetFlag(FLAGS_xds), absl::GetFlag(FLAGS_xds_server_name), node, absl::GetFlag(FLAGS_delta)},
                certificate, metrics, [&](ProxyConfigConstSharedPtr config) {
                  server.SetConfig(std::move(config));
                  rebuild_tls();
                });

  AdminServer admin(absl::GetFlag(FLAGS_admin_addr), [&](const std::string& method, const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    if (method != "GET" && method != "HEAD") return AdminResponse{405, "text/plain", "method not allowed\n"};
    if (path == "/ready") {
      if (server.draining()) return AdminResponse{503, "text/plain", "DRAINING\n"};  // Envoy's word
      bool ready = certificate.Current() != nullptr && xds.HasInitialConfig();
      return AdminResponse{ready ? 200 : 503, "text/plain", ready ? "LIVE\n" : "PRE_INITIALIZING\n"};
    }
    if (path == "/config_dump") {
      return AdminResponse{200, "application/json", ConfigDump(server.config(), xds.GetStatus(), certificate.Current())};
    }
    if (path == "/stats/prometheus" || path == "/metrics") {
      return AdminResponse{200, "text/plain; version=0.0.4", metrics.RenderPrometheus()};
    }
    if (path == "/") return AdminResponse{200, "text/plain", "/ready\n/config_dump\n/stats/prometheus\n"};
    return AdminResponse{404, "text/plain", "not found\n"};
  });
  if (auto s = admin.Start(); !s.ok()) Fail(std::string(s.message()));
  if (auto s = server.Start(); !s.ok()) Fail(std::string(s.message()));
  WEFT_LOG(INFO) << "weft-proxy " << node_id << " as " << spiffe_id << ": outbound " << po.outbound_addr
                 << ", inbound " << po.inbound_addr << " → " << po.app_addr << ", admin "
                 << absl::GetFlag(FLAGS_admin_addr);

  std::thread bootstrap([&] {
    if (!certificate.RefreshUntilSuccess()) return;
    certificate.StartRenewal();
    if (!g_stop) xds.Start();
  });
  g_stop_notification.WaitForNotification();
  // Configuration and certificate stay current while the data path drains.
  const absl::Duration drain = absl::GetFlag(FLAGS_drain_timeout);
  WEFT_LOG(INFO) << "weft-proxy: draining for up to " << absl::FormatDuration(drain);
  const bool drained = server.Drain(absl::ToChronoMilliseconds(drain));
  WEFT_LOG(INFO) << "weft-proxy: " << (drained ? "drained" : "drain timeout with connections still open")
                 << "; shutting down";
  certificate.Stop();
  bootstrap.join();
  xds.Stop();
  admin.Stop();
  server.Stop();
  return 0;
}

}  // namespace
}  // namespace weft::proxy

int main(int argc, char** argv) { return weft::proxy::Main(argc, argv); }
