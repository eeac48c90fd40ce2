// The Aggregated Discovery Service (xDS v3), state of the world and delta, on
// gRPC's callback API: no thread per stream. Each stream is a reactor that
// feeds a SotwStream or DeltaStream state machine and writes what it
// decides; pushes come from SnapshotCache watches. Register one instance on
// every server that serves xDS (plaintext and TLS).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ca/spiffe_id.h"

#include "common/metrics.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "server/config_publisher.h"
#include "server/proxy_tracker.h"
#include "server/push_window.h"
#include "server/snapshot_cache.h"

namespace weft::server {

// The raw (ByteBuffer) method variants: responses are written as slices of
// the shared pre-encoded configuration (see OutgoingResponse).
using AdsRawService = envoy::service::discovery::v3::AggregatedDiscoveryService::
    WithRawCallbackMethod_StreamAggregatedResources<
        envoy::service::discovery::v3::AggregatedDiscoveryService::
            WithRawCallbackMethod_DeltaAggregatedResources<
                envoy::service::discovery::v3::AggregatedDiscoveryService::Service>>;

class AdsService final : public AdsRawService {
 public:
  // Proves who a proxy is from the TLS client certificate it presented (PEM).
  using PeerAuthenticator = std::function<absl::StatusOr<ca::SpiffeId>(const std::string& peer_cert_pem)>;

  // Without `authenticate_peer` (the plaintext development port), a proxy's
  // namespace and service account come from its node id and metadata. With
  // it (the TLS port), every stream must present a mesh certificate, and
  // the identity in it is the proxy's: deny what cannot be authenticated.
  AdsService(SnapshotCache& cache, ConfigPublisher& publisher, ProxyTracker& tracker,
             common::MetricsRegistry& metrics, PeerAuthenticator authenticate_peer = nullptr,
             PushWindow* window = nullptr);

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* DeltaAggregatedResources(
      grpc::CallbackServerContext* context) override;

 private:
  template <typename Protocol>
  friend class AdsReactor;
  // Per-type metrics, looked up once per stream and type.
  struct TypeMetrics {
    common::Counter* acks;
    common::Counter* nacks;
    common::Counter* stale;
    common::Counter* pushes;
  };
  TypeMetrics* MetricsFor(const std::string& type_url);

  SnapshotCache& cache_;
  ConfigPublisher& publisher_;
  ProxyTracker& tracker_;
  common::MetricsRegistry& metrics_;
  const PeerAuthenticator authenticate_peer_;
  PushWindow own_window_{0, absl::ZeroDuration()};  // unbounded, when none is given
  PushWindow& window_;
  std::atomic<uint64_t> next_stream_id_{1};
  common::Gauge& connected_;
  common::Counter& bytes_sent_;
  common::Histogram& convergence_;
  common::Histogram& push_seconds_;
  absl::Mutex type_metrics_mu_;
  // By ShortTypeName: at most six entries, whatever type URLs clients send.
  std::map<std::string, std::unique_ptr<TypeMetrics>, std::less<>> type_metrics_ ABSL_GUARDED_BY(type_metrics_mu_);
};

}  // namespace weft::server
