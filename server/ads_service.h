// The Aggregated Discovery Service (xDS v3) on gRPC's callback API: no thread
// per stream. Each stream is a reactor that feeds SotwStream and writes what
// it decides; pushes come from SnapshotCache watches. Delta ADS comes with
// the complete xDS server (issue 3) and answers UNIMPLEMENTED until then.
#pragma once

#include <atomic>

#include "common/metrics.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "server/config_publisher.h"
#include "server/proxy_tracker.h"
#include "server/snapshot_cache.h"

namespace weft::server {

class AdsService final
    : public envoy::service::discovery::v3::AggregatedDiscoveryService::CallbackService {
 public:
  AdsService(SnapshotCache& cache, ConfigPublisher& publisher, ProxyTracker& tracker,
             common::MetricsRegistry& metrics);

  grpc::ServerBidiReactor<envoy::service::discovery::v3::DiscoveryRequest,
                          envoy::service::discovery::v3::DiscoveryResponse>*
  StreamAggregatedResources(grpc::CallbackServerContext* context) override;

 private:
  friend class SotwReactor;
  SnapshotCache& cache_;
  ConfigPublisher& publisher_;
  ProxyTracker& tracker_;
  common::MetricsRegistry& metrics_;
  std::atomic<uint64_t> next_stream_id_{1};
};

}  // namespace weft::server
