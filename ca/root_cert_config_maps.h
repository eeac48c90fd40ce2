// Kubernetes mode: keeps the ConfigMap weft-ca-root-cert (data key
// root-cert.pem = the trust bundle) in every meshed namespace (the ones
// --namespace-selector selects, or all), which sidecars mount as
// --trust-bundle (DESIGN.md §3). Creates missing ones, rewrites stale or
// edited ones, and recreates deleted ones: on every bundle or namespace
// change and every `resync` interval. When a namespace leaves the mesh its
// ConfigMap is deleted, if weftd made it (label
// app.kubernetes.io/managed-by=weftd), as istiod deletes istio-ca-root-cert
// from namespaces its discoverySelectors no longer select; one that was
// there before weftd started and left while it was down stays. weftd feeds
// it from the mesh snapshots and the RootRotator; the HTTP call is injected
// like KubeSecretCaStore's.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ca/kube_secret_ca_store.h"
#include "common/metrics.h"

namespace weft::ca {

class RootCertConfigMaps {
 public:
  static constexpr char kName[] = "weft-ca-root-cert";
  static constexpr char kKey[] = "root-cert.pem";

  RootCertConfigMaps(KubeHttp http, common::MetricsRegistry& metrics,
                     std::chrono::seconds resync = std::chrono::seconds(30));
  ~RootCertConfigMaps();  // Stop()s

  void SetNamespaces(std::set<std::string> namespaces);
  void SetBundle(std::string pem);

  // One pass over every namespace now; the first error (others are logged).
  absl::Status Sync();

  // Syncs from a background thread on every change and every resync.
  void Start();
  void Stop();

 private:
  absl::Status SyncNamespace(const std::string& ns, const std::string& bundle);
  // Deletes weftd's ConfigMap in `ns` (which left the mesh); OK when there
  // is none or it is not weftd's.
  absl::Status RemoveFromNamespace(const std::string& ns);
  void Loop();

  const KubeHttp http_;
  common::MetricsRegistry& metrics_;
  const std::chrono::seconds resync_;

  absl::Mutex mu_;
  std::set<std::string> namespaces_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> left_ ABSL_GUARDED_BY(mu_);  // left the mesh; ConfigMap not yet deleted
  std::string bundle_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace weft::ca
