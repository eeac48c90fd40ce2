// weftd: the Weft control plane. Wires a discovery source (file mode or
// Kubernetes) to the policy compiler, the snapshot cache, the ADS server and
// the admin API. Flags and ports are a contract (DESIGN.md §3).
#include <malloc.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <sys/stat.h>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "ca/certificate_authority.h"
#include "ca/kube_secret_ca_store.h"
#include "ca/mesh_cert_authenticator.h"
#include "ca/root_cert_config_maps.h"
#include "ca/token_review_authenticator.h"
#include "common/address.h"
#include "common/flags.h"
#include "common/heap_trimmer.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/runtime.h"
#include "common/token_file.h"
#include "discovery/file_registry.h"
#include "discovery/kube_client.h"
#include "discovery/kube_config.h"
#include "discovery/kube_registry.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "policy/resource_types.h"
#include "server/admin_server.h"
#include "server/ads_service.h"
#include "server/config_publisher.h"
#include "server/kube_policy_status.h"
#include "server/proxy_tracker.h"
#include "server/push_debouncer.h"
#include "server/snapshot_cache.h"
#include "server/xds_memory_quota.h"

ABSL_FLAG(std::string, registry, "", "file|kubernetes (default: kubernetes when KUBERNETES_SERVICE_HOST is set, else file)");
ABSL_FLAG(std::string, config_dir, "", "file mode: the directory of YAML/JSON manifests, watched live");
ABSL_FLAG(std::string, kubeconfig, "", "Kubernetes mode outside a cluster: the kubeconfig file");
ABSL_FLAG(std::string, namespace_selector, "", "Kubernetes mode: LABEL=VALUE; only namespaces with this label join the mesh");
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
ABSL_FLAG(int, push_window, 0,
          "at most this many proxies with a pushed update they have not ACKed or NACKed yet; 0: no bound (with "
          "each proxy on its own connection the memory quota bounds the answers' buffers)");
ABSL_FLAG(int, xds_memory_quota_mb, 32,
          "least MB of connection buffers gRPC may hold for the xDS servers before it shrinks and reclaims them "
          "(plus 48 KB per connected stream above that); 0: no quota");

namespace weft::server {
namespace {

using common::IsLoopback;
using common::ParseHostPort;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "weftd: %s\n", message.c_str());
  std::exit(2);
}

bool IsDirectory(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The CA's Kubernetes calls (the Secret store, the root-cert ConfigMaps)
// through weftd's client.
ca::KubeHttp KubeHttpFor(discovery::KubeClient* kube_client) {
  return [kube_client](const std::string& method, const std::string& path,
                       const std::string& body) -> absl::StatusOr<ca::KubeHttpResponse> {
    auto response = kube_client->Request(method, path, body, body.empty() ? "" : "application/json");
    if (!response.ok()) return response.status();
    return ca::KubeHttpResponse{response->status, std::move(response->body)};
  };
}

// The CA from the --ca-dir, --trust-domain, --cert-ttl and --server-names
// flags; file mode authenticates with <config-dir>/tokens.yaml. --ca-dir
// defaults to $HOME/.weft/ca (docs/ca.md).
std::unique_ptr<ca::CertificateAuthority> StartCertificateAuthority(const std::string& config_dir,
                                                                    common::MetricsRegistry& metrics,
                                                                    discovery::KubeClient* kube_client) {
  std::unique_ptr<ca::CaStore> secret_store;
  if (const std::string ref = absl::GetFlag(FLAGS_ca_secret); !ref.empty()) {
    if (kube_client == nullptr) Fail("--ca-secret: needs Kubernetes mode (a kubeconfig or in-cluster config)");
    auto store = ca::KubeSecretCaStore::Create(ref, KubeHttpFor(kube_client));
    if (!store.ok()) Fail("--ca-secret: " + std::string(store.status().message()));
    secret_store = std::move(store).value();
  }
  ca::CertificateAuthorityOptions options;
  options.ca_dir = absl::GetFlag(FLAGS_ca_dir);
  if (options.ca_dir.empty()) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') Fail("--ca-dir is required when HOME is not set");
    options.ca_dir = std::string(home) + "/.weft/ca";
  }
  options.trust_domain = absl::GetFlag(FLAGS_trust_domain);
  if (!ca::IsValidIdentitySegment(options.trust_domain)) {
    Fail("--trust-domain: not a valid trust domain: \"" + options.trust_domain + "\"");
  }
  absl::Duration ttl;
  if (!absl::ParseDuration(absl::GetFlag(FLAGS_cert_ttl), &ttl) || ttl < absl::Minutes(1)) {
    Fail("--cert-ttl: want a duration of at least 1m such as 24h, got \"" + absl::GetFlag(FLAGS_cert_ttl) + "\"");
  }
  options.cert_ttl = std::chrono::seconds(absl::ToInt64Seconds(ttl));
  options.server_names = absl::StrSplit(absl::GetFlag(FLAGS_server_names), ',', absl::SkipWhitespace());
  if (!config_dir.empty()) options.tokens_file = config_dir + "/tokens.yaml";
  const bool in_secret = secret_store != nullptr;
  auto ca = ca::CertificateAuthority::Create(options, common::RealClock::Get(), metrics, std::move(secret_store));
  if (!ca.ok()) Fail((in_secret ? "--ca-secret: " : "--ca-dir: ") + std::string(ca.status().message()));
  if (kube_client != nullptr) {
    // Kubernetes mode: projected service-account tokens (audience weft-ca),
    // checked by the API server's TokenReview.
    (*ca)->AddAuthenticator(std::make_unique<ca::TokenReviewAuthenticator>(
        options.trust_domain, [kube_client](const std::string& request_json) -> absl::StatusOr<std::string> {
          auto response = kube_client->Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", request_json,
                                               "application/json");
          if (!response.ok()) return response.status();
          if (response->status / 100 != 2) {
            return absl::UnavailableError(absl::StrCat("TokenReview answered HTTP ", response->status));
          }
          return response->body;
        }));
  }
  (*ca)->Start();
  return std::move(*ca);
}

// True when every connected proxy that uses SDS has ACKed a ROOTCA Secret
// holding exactly `bundle` (proxyless clients without SDS do not count).
bool BundleDistributed(const ConfigPublisher& publisher, const ProxyTracker& tracker,
                       const std::vector<std::string>& bundle) {
  if (publisher.trust_bundle() != bundle) return false;
  std::string expected;
  for (const auto& pem : bundle) expected += pem;
  for (const ProxyStatus& proxy : tracker.List()) {
    auto it = proxy.types.find(std::string(policy::kSecretType));
    if (it == proxy.types.end()) continue;
    const policy::Resource* held = it->second.acked.Find("ROOTCA");
    envoy::extensions::transport_sockets::tls::v3::Secret secret;
    if (held == nullptr || !held->body->UnpackTo(&secret) ||
        secret.validation_context().trusted_ca().inline_string() != expected) {
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  // glibc gives every thread that allocates its own arena; gRPC's many
  // threads then hold freed memory in dozens of arenas. Two are plenty for a
  // control plane and keep its RSS close to what it uses.
  mallopt(M_ARENA_MAX, 2);
  common::DisableMutexDeadlockDetection();
  absl::SetProgramUsageMessage("weftd: the Weft service-mesh control plane");
  common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);

  std::string registry_kind = absl::GetFlag(FLAGS_registry);
  if (registry_kind.empty()) {
    registry_kind = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr || !absl::GetFlag(FLAGS_kubeconfig).empty()
                        ? "kubernetes"
                        : "file";
  }
  if (registry_kind != "file" && registry_kind != "kubernetes") {
    Fail("--registry: must be file or kubernetes, got \"" + registry_kind + "\"");
  }
  const int push_window_size = absl::GetFlag(FLAGS_push_window);
  if (push_window_size < 0) Fail("--push-window: want 0 (no bound) or a positive number of proxies");
  const int memory_quota_mb = absl::GetFlag(FLAGS_xds_memory_quota_mb);
  if (memory_quota_mb < 0 || memory_quota_mb > (1 << 20)) {
    Fail("--xds-memory-quota-mb: want 0 (no quota) or a number of MB up to 1048576");
  }
  const std::string config_dir = absl::GetFlag(FLAGS_config_dir);
  // Kubernetes mode: the API server from --kubeconfig, else the in-cluster
  // service account (DESIGN.md §3); checked before anything starts.
  discovery::KubeClientPtr kube_client;
  if (registry_kind == "kubernetes") {
    const std::string kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
    auto kube_config = kubeconfig.empty() ? discovery::LoadInClusterConfig() : discovery::LoadKubeconfig(kubeconfig);
    if (!kube_config.ok()) Fail((kubeconfig.empty() ? "--registry=kubernetes: " : "--kubeconfig: ") +
                                std::string(kube_config.status().message()));
    auto client = discovery::KubeClient::Create(*std::move(kube_config));
    if (!client.ok()) Fail("--kubeconfig: " + std::string(client.status().message()));
    kube_client = std::move(client).value();
    std::string label, value;
    const std::string selector = absl::GetFlag(FLAGS_namespace_selector);
    if (!selector.empty()) {
      absl::Status parsed = discovery::ParseNamespaceSelector(selector, &label, &value);
      if (!parsed.ok()) Fail(std::string(parsed.message()));
    }
    if (!config_dir.empty() && !IsDirectory(config_dir)) {
      Fail("--config-dir: " + config_dir + " is not a readable directory");
    }
  } else {
    if (!absl::GetFlag(FLAGS_kubeconfig).empty()) Fail("--kubeconfig needs --registry=kubernetes");
    if (!absl::GetFlag(FLAGS_namespace_selector).empty()) Fail("--namespace-selector needs --registry=kubernetes");
    if (config_dir.empty()) Fail("--config-dir is required with --registry=file");
    if (!IsDirectory(config_dir)) Fail("--config-dir: " + config_dir + " is not a readable directory");
  }

  auto admin_addr = ParseHostPort(absl::GetFlag(FLAGS_admin_addr));
  if (!admin_addr.ok()) Fail("--admin-addr: " + std::string(admin_addr.status().message()));
  AdminOptions admin_options{admin_addr->host, admin_addr->port, ""};
  if (!absl::GetFlag(FLAGS_admin_token_file).empty()) {
    auto token = common::ReadTokenFile(absl::GetFlag(FLAGS_admin_token_file));
    if (!token.ok()) Fail("--admin-token-file: " + std::string(token.status().message()));
    admin_options.token = *std::move(token);
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
  // Bursts (proxies connecting, pushes) leave freed memory resident; give
  // it back every second.
  common::HeapTrimmer heap_trimmer(absl::Seconds(1), &metrics);
  // One quota for both xDS servers (server/xds_memory_quota.h), after
  // `metrics`: its thread reads the streams gauge until it is destroyed.
  std::optional<XdsMemoryQuota> memory_quota;
  if (memory_quota_mb > 0) {
    memory_quota.emplace(static_cast<size_t>(memory_quota_mb) << 20);
    // Often enough that a reconnect storm (every proxy at once after a
    // restart) finds the quota sized for it within a tenth of a second.
    memory_quota->Follow(metrics.GetGauge("weft_xds_connected_streams", "Open xDS streams."),
                         absl::Milliseconds(100), metrics);
  }
  auto configure_xds_server = [&](grpc::ServerBuilder& builder) {
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    // A second weftd on the same port must fail, not share it silently.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    if (memory_quota) builder.SetResourceQuota(memory_quota->quota());
  };
  // New configuration reaches the streams from as many threads as there
  // are cores (each stream's share is CPU: diff, encode, gRPC write).
  SnapshotCache cache(std::max(1u, std::thread::hardware_concurrency()));
  ProxyTracker tracker;
  ConfigPublisher publisher(cache, metrics);

  std::unique_ptr<discovery::Registry> registry;
  discovery::KubeRegistry* kube_registry = nullptr;
  if (kube_client) {
    discovery::KubeRegistryOptions kube_options;
    kube_options.namespace_selector = absl::GetFlag(FLAGS_namespace_selector);
    // The validator's verdicts (below) decide the policies' statuses.
    kube_options.policy_verdicts = true;
    auto kube = std::make_unique<discovery::KubeRegistry>(*kube_client, metrics, kube_options);
    kube_registry = kube.get();
    registry = std::move(kube);
  } else {
    registry = std::make_unique<discovery::FileRegistry>(config_dir, metrics);
  }
  // Changes are debounced (20 ms quiet, 500 ms at most) and coalesced.
  PushDebouncer debouncer(common::RealClock::Get(), DebounceOptions{},
                          [&publisher, kube_registry](discovery::MeshSnapshotConstSharedPtr mesh,
                                                      common::Clock::TimePoint first_change) {
                            publisher.OnMeshSnapshot(mesh, first_change);
                            // Kubernetes mode: the registry writes what the
                            // validator concluded into the objects' status.
                            policy::PolicySetConstSharedPtr policies = publisher.policies();
                            if (kube_registry != nullptr && policies != nullptr &&
                                policies->snapshot_version == mesh->version) {
                              kube_registry->ReportVerdicts(mesh->version, KubePolicyVerdicts(*mesh, *policies));
                            }
                          });
  debouncer.Start();
  // Kubernetes mode: the trust bundle as ConfigMap weft-ca-root-cert in
  // every meshed namespace, for sidecars to mount as --trust-bundle.
  std::unique_ptr<ca::RootCertConfigMaps> root_cert_maps;
  if (kube_client) root_cert_maps = std::make_unique<ca::RootCertConfigMaps>(KubeHttpFor(kube_client.get()), metrics);
  absl::Status run = registry->Run([&debouncer, &root_cert_maps](discovery::MeshSnapshotConstSharedPtr mesh) {
    if (root_cert_maps) {
      std::set<std::string> namespaces;
      for (const auto& [key, ns] : mesh->namespaces) namespaces.insert(ns.meta.name);
      root_cert_maps->SetNamespaces(std::move(namespaces));
    }
    debouncer.Add(std::move(mesh));
  });
  if (!run.ok()) Fail(std::string(run.message()));

  // At most --push-window proxies hold a pushed update they have not
  // answered; one that does not answer within a second stops counting.
  PushWindow push_window(static_cast<size_t>(push_window_size), absl::Seconds(1), &metrics);
  AdsService ads(cache, publisher, tracker, metrics, nullptr, &push_window);
  std::unique_ptr<grpc::Server> grpc_server;
  if (!plaintext_addr.empty()) {
    grpc::ServerBuilder builder;
    int selected_port = 0;
    builder.AddListeningPort(plaintext_addr, grpc::InsecureServerCredentials(), &selected_port);
    builder.RegisterService(&ads);
    configure_xds_server(builder);
    grpc_server = builder.BuildAndStart();
    if (!grpc_server || selected_port == 0) Fail("--xds-plaintext-addr: cannot listen on " + plaintext_addr);
    WEFT_LOG(INFO) << "xDS (plaintext ADS) on " << plaintext_addr.substr(0, plaintext_addr.rfind(':'))
                   << ":" << selected_port;
  }
  // The built-in CA (issue 5) and --xds-addr over TLS: the CA service and ADS.
  std::unique_ptr<ca::CertificateAuthority> ca = StartCertificateAuthority(config_dir, metrics, kube_client.get());
  // The trust bundle goes to every proxy as SDS Secret ROOTCA, and again on
  // every change; signing moves to a new root once every SDS client has
  // ACKed a bundle that holds it.
  publisher.SetTrustBundle(ca->rotator().TrustBundlePem());
  ca->rotator().AddChangeCallback([&publisher, &ca, &root_cert_maps](const ca::CaView&) {
    publisher.SetTrustBundle(ca->rotator().TrustBundlePem());
    if (root_cert_maps) root_cert_maps->SetBundle(absl::StrJoin(ca->rotator().TrustBundlePem(), ""));
  });
  if (root_cert_maps) {
    root_cert_maps->SetBundle(absl::StrJoin(ca->rotator().TrustBundlePem(), ""));
    root_cert_maps->Start();
  }
  ca->rotator().SetBundleDistributedPredicate([&publisher, &tracker](const std::vector<std::string>& bundle) {
    return BundleDistributed(publisher, tracker, bundle);
  });
  // On the TLS port a proxy is who its mesh certificate says.
  ca::MeshCertAuthenticator peer_authenticator(ca->rotator(), absl::GetFlag(FLAGS_trust_domain),
                                               common::RealClock::Get());
  AdsService ads_tls(cache, publisher, tracker, metrics, [&peer_authenticator](const std::string& pem) {
    ca::CallerCredentials credentials;
    credentials.peer_cert_pem = pem;
    absl::StatusOr<std::optional<ca::SpiffeId>> id = peer_authenticator.Authenticate(credentials);
    if (!id.ok()) return absl::StatusOr<ca::SpiffeId>(id.status());
    if (!id->has_value()) return absl::StatusOr<ca::SpiffeId>(absl::UnauthenticatedError("no certificate"));
    return absl::StatusOr<ca::SpiffeId>(**id);
  }, &push_window);
  std::unique_ptr<grpc::Server> tls_server;
  {
    const std::string xds_addr = absl::GetFlag(FLAGS_xds_addr);
    if (!ParseHostPort(xds_addr).ok()) Fail("--xds-addr: not HOST:PORT: " + xds_addr);
    grpc::ServerBuilder builder;
    int selected_port = 0;
    builder.AddListeningPort(xds_addr, ca->ServerCredentials(), &selected_port);
    builder.RegisterService(&ca->service());
    builder.RegisterService(&ads_tls);
    configure_xds_server(builder);
    tls_server = builder.BuildAndStart();
    if (!tls_server || selected_port == 0) Fail("--xds-addr: cannot listen on " + xds_addr);
    WEFT_LOG(INFO) << "xDS and the CA (TLS) on " << xds_addr.substr(0, xds_addr.rfind(':')) << ":" << selected_port
                   << "; CA in " << ca->store_description();
  }

  AdminServer admin(admin_options, publisher, tracker, metrics);
  admin.SetCertificateAuthority(ca.get());
  if (absl::Status s = admin.Start(); !s.ok()) Fail(std::string(s.message()));
  WEFT_LOG(INFO) << "weftd ready ("
                 << (kube_client ? "kubernetes mode, " + kube_client->config().Url() : "file mode, " + config_dir)
                 << ")";

  int sig = 0;
  sigwait(&signals, &sig);
  WEFT_LOG(INFO) << "signal " << sig << ": shutting down";
  registry->Stop();
  debouncer.Stop();
  admin.Stop();
  if (grpc_server) grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  tls_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ca->Stop();
  if (root_cert_maps) root_cert_maps->Stop();
  return 0;
}

}  // namespace
}  // namespace weft::server

int main(int argc, char** argv) { return weft::server::Main(argc, argv); }
