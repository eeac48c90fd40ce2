// weftd: the Weft control plane. Wires a discovery source (file mode or
// Kubernetes) to the policy compiler, the snapshot cache, the ADS server and
// the admin API. Flags and ports are a contract (DESIGN.md §3).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <sys/stat.h>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "discovery/file_registry.h"
#include "server/address.h"
#include "server/admin_server.h"
#include "server/ads_service.h"
#include "server/config_publisher.h"
#include "server/proxy_tracker.h"
#include "server/push_debouncer.h"
#include "server/snapshot_cache.h"

ABSL_FLAG(std::string, registry, "", "file|kubernetes (default: kubernetes when KUBERNETES_SERVICE_HOST is set, else file)");
ABSL_FLAG(std::string, config_dir, "", "file mode: the directory of YAML/JSON manifests, watched live");
ABSL_FLAG(std::string, kubeconfig, "", "Kubernetes mode outside a cluster: the kubeconfig file");
ABSL_FLAG(std::string, xds_addr, "0.0.0.0:15012", "gRPC over TLS for xDS and the CA");
ABSL_FLAG(std::string, xds_plaintext_addr, "", "plaintext xDS for development and proxyless test clients; off unless given");
ABSL_FLAG(std::string, admin_addr, "127.0.0.1:15014", "REST admin API; a non-loopback address requires --admin-token-file");
ABSL_FLAG(std::string, admin_token_file, "", "file holding the admin API bearer token");
ABSL_FLAG(std::string, ca_dir, "", "where the CA root/intermediate and keys live");
ABSL_FLAG(std::string, ca_secret, "", "Kubernetes: NS/NAME of the Secret holding the CA");
ABSL_FLAG(std::string, trust_domain, "cluster.local", "SPIFFE trust domain");
ABSL_FLAG(std::string, cert_ttl, "24h", "workload certificate lifetime");
ABSL_FLAG(std::string, server_names, "weftd.weft-system.svc,localhost,127.0.0.1", "DNS names and IPs in weftd's serving certificate");
ABSL_FLAG(std::string, root_namespace, "weft-system", "where mesh-wide policies live");

namespace weft::server {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "weftd: %s\n", message.c_str());
  std::exit(2);
}

bool IsDirectory(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string ReadToken(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) Fail("--admin-token-file: cannot read " + path);
  char buf[4096];
  size_t n = std::fread(buf, 1, sizeof(buf), f);
  std::fclose(f);
  std::string token(buf, n);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) Fail("--admin-token-file: " + path + " is empty");
  return token;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("weftd: the Weft service-mesh control plane");
  common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);

  std::string registry_kind = absl::GetFlag(FLAGS_registry);
  if (registry_kind.empty()) {
    registry_kind = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr ? "kubernetes" : "file";
  }
  if (registry_kind != "file" && registry_kind != "kubernetes") {
    Fail("--registry: must be file or kubernetes, got \"" + registry_kind + "\"");
  }
  if (registry_kind == "kubernetes") {
    Fail("--registry=kubernetes: the Kubernetes client is not built yet (issue 4); use --registry=file");
  }
  const std::string config_dir = absl::GetFlag(FLAGS_config_dir);
  if (config_dir.empty()) Fail("--config-dir is required with --registry=file");
  if (!IsDirectory(config_dir)) Fail("--config-dir: " + config_dir + " is not a readable directory");

  auto admin_addr = ParseHostPort(absl::GetFlag(FLAGS_admin_addr));
  if (!admin_addr.ok()) Fail("--admin-addr: " + std::string(admin_addr.status().message()));
  AdminOptions admin_options{admin_addr->host, admin_addr->port, ""};
  if (!absl::GetFlag(FLAGS_admin_token_file).empty()) {
    admin_options.token = ReadToken(absl::GetFlag(FLAGS_admin_token_file));
  } else if (!IsLoopback(admin_addr->host)) {
    Fail("--admin-addr: " + admin_addr->host + " is not a loopback address; --admin-token-file is required");
  }
  std::string plaintext_addr = absl::GetFlag(FLAGS_xds_plaintext_addr);
  if (!plaintext_addr.empty()) {
    auto parsed = ParseHostPort(plaintext_addr);
    if (!parsed.ok()) Fail("--xds-plaintext-addr: " + std::string(parsed.status().message()));
  }

  // Signals are handled by sigwait in this thread; block them everywhere.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  common::MetricsRegistry metrics;
  SnapshotCache cache;
  ProxyTracker tracker;
  ConfigPublisher publisher(cache, metrics);

  discovery::FileRegistry registry(config_dir, metrics);
  // Changes are debounced (20 ms quiet, 500 ms at most) and coalesced.
  PushDebouncer debouncer(common::RealClock::Get(), DebounceOptions{},
                          [&publisher](discovery::MeshSnapshotConstSharedPtr mesh,
                                       common::Clock::TimePoint first_change) {
                            publisher.OnMeshSnapshot(std::move(mesh), first_change);
                          });
  debouncer.Start();
  absl::Status run = registry.Run([&debouncer](discovery::MeshSnapshotConstSharedPtr mesh) {
    debouncer.Add(std::move(mesh));
  });
  if (!run.ok()) Fail(std::string(run.message()));

  AdsService ads(cache, publisher, tracker, metrics);
  std::unique_ptr<grpc::Server> grpc_server;
  if (!plaintext_addr.empty()) {
    grpc::ServerBuilder builder;
    int selected_port = 0;
    builder.AddListeningPort(plaintext_addr, grpc::InsecureServerCredentials(), &selected_port);
    builder.RegisterService(&ads);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    grpc_server = builder.BuildAndStart();
    if (!grpc_server || selected_port == 0) Fail("--xds-plaintext-addr: cannot listen on " + plaintext_addr);
    WEFT_LOG(INFO) << "xDS (plaintext ADS) on " << plaintext_addr.substr(0, plaintext_addr.rfind(':'))
                   << ":" << selected_port;
  }
  WEFT_LOG(WARNING) << "--xds-addr " << absl::GetFlag(FLAGS_xds_addr)
                    << " (xDS and the CA over TLS) needs the built-in CA, which is not built yet; "
                       "only --xds-plaintext-addr is served";

  AdminServer admin(admin_options, publisher, tracker, metrics);
  if (absl::Status s = admin.Start(); !s.ok()) Fail(std::string(s.message()));
  WEFT_LOG(INFO) << "weftd ready (file mode, " << config_dir << ")";

  int sig = 0;
  sigwait(&signals, &sig);
  WEFT_LOG(INFO) << "signal " << sig << ": shutting down";
  registry.Stop();
  debouncer.Stop();
  admin.Stop();
  if (grpc_server) grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace
}  // namespace weft::server

int main(int argc, char** argv) { return weft::server::Main(argc, argv); }
