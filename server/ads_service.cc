#include "server/ads_service.h"

#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "policy/resource_types.h"
#include "server/node_identity.h"
#include "server/sotw_stream.h"

namespace weft::server {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

// One state-of-the-world ADS stream. Owns itself through self_ until gRPC
// calls OnDone; cache watches hold only weak references. gRPC operations
// (StartRead/StartWrite/Finish) are started outside mu_, so a reaction that
// gRPC runs inline can never deadlock on it.
class SotwReactor final : public grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse>,
                          public std::enable_shared_from_this<SotwReactor> {
 public:
  SotwReactor(AdsService& service, grpc::CallbackServerContext* context, uint64_t stream_id)
      : service_(service), stream_id_(stream_id) {
    status_.stream_id = stream_id;
    status_.peer = context->peer();
    status_.connected_at = std::chrono::system_clock::now();
  }

  void Start(std::shared_ptr<SotwReactor> self) {
    self_ = std::move(self);
    service_.metrics_.GetGauge("weft_xds_connected_streams", "Open xDS streams.").Add(1);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed or the stream broke
      FinishOnce(grpc::Status::OK);
      return;
    }
    const DiscoveryRequest request = std::move(request_);
    request_.Clear();
    grpc::Status error = Identify(request);
    if (!error.ok()) {
      FinishOnce(error);
      return;
    }
    if (request.type_url().empty()) {
      FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "DiscoveryRequest.type_url is required on ADS"));
      return;
    }
    ProxySnapshotConstSharedPtr snapshot = service_.cache_.GetSnapshot(node_id_);
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      SotwStream::Result result = stream_.OnRequest(request, snapshot.get());
      RecordEventLocked(request, result.event);
      // Answers to requests are not pushes: no push latency to record.
      EnqueueLocked(std::move(result.responses), nullptr);
    }
    MaybeWrite();
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
    }
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    MaybeWrite();
  }

  void OnCancel() override {}

  void OnDone() override {
    uint64_t watch_id;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      watch_id = watch_id_;
    }
    if (watch_id != 0) service_.cache_.CancelWatch(watch_id);
    if (!node_id_.empty()) service_.publisher_.DisconnectNode(node_id_);
    service_.tracker_.Remove(stream_id_);
    service_.metrics_.GetGauge("weft_xds_connected_streams", "Open xDS streams.").Add(-1);
    WEFT_LOG(INFO) << "xds stream " << stream_id_ << " closed (node " << node_id_ << ")";
    self_.reset();  // may delete this
  }

  // From a SnapshotCache watch (any thread).
  void OnSnapshot(const ProxySnapshotConstSharedPtr& snapshot) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finishing_) return;
      EnqueueLocked(stream_.OnSnapshot(*snapshot), snapshot.get());
    }
    MaybeWrite();
  }

 private:
  // The first request names the node; later ones may leave it out.
  grpc::Status Identify(const DiscoveryRequest& request) {
    if (!node_id_.empty()) return grpc::Status::OK;
    if (!request.has_node() || request.node().id().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the first DiscoveryRequest on a stream must carry node.id");
    }
    node_id_ = request.node().id();
    policy::ProxyIdentity identity = IdentityFromNode(request.node());
    {
      absl::MutexLock lock(&mu_);
      status_.node_id = node_id_;
      status_.user_agent = request.node().user_agent_name();
      status_.identity = identity;
    }
    std::weak_ptr<SotwReactor> weak = weak_from_this();
    uint64_t watch_id = service_.cache_.Watch(node_id_, [weak](const ProxySnapshotConstSharedPtr& s) {
      if (auto self = weak.lock()) self->OnSnapshot(s);
    });
    {
      absl::MutexLock lock(&mu_);
      watch_id_ = watch_id;
    }
    absl::Status status = service_.publisher_.ConnectNode(node_id_, identity);
    if (!status.ok()) {
      WEFT_LOG(ERROR) << "no configuration for node " << node_id_ << ": " << status;
    }
    WEFT_LOG(INFO) << "xds stream " << stream_id_ << " from " << status_.peer << ": node "
                   << node_id_ << " (" << request.node().user_agent_name() << ", namespace "
                   << identity.namespace_ << ", service account " << identity.service_account << ")";
    return grpc::Status::OK;
  }

  void RecordEventLocked(const DiscoveryRequest& request, SotwStream::Event event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string type(policy::ShortTypeName(request.type_url()));
    auto& metrics = service_.metrics_;
    switch (event) {
      case SotwStream::Event::kAck:
        metrics.GetCounter("weft_xds_acks_total", "ACKs received, by type.", {{"type", type}}).Inc();
        break;
      case SotwStream::Event::kNack: {
        metrics.GetCounter("weft_xds_nacks_total", "NACKs received, by type.", {{"type", type}}).Inc();
        const TypeState& state = stream_.types().at(request.type_url());
        std::string names;
        for (const auto& n : state.nacked_resources) names += (names.empty() ? "" : ", ") + n;
        WEFT_LOG(WARNING) << "NACK from " << node_id_ << " for " << type << " version "
                          << state.nacked_version << " [" << names
                          << "]: " << request.error_detail().message();
        break;
      }
      case SotwStream::Event::kStale:
        metrics.GetCounter("weft_xds_stale_requests_total",
                           "Requests ignored because their nonce was not the latest.", {{"type", type}})
            .Inc();
        break;
      default:
        break;
    }
    status_.types = stream_.types();
    service_.tracker_.Update(status_);
  }

  void EnqueueLocked(std::vector<DiscoveryResponse> responses, const ProxySnapshot* snapshot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (responses.empty()) return;
    for (auto& r : responses) {
      std::string type(policy::ShortTypeName(r.type_url()));
      service_.metrics_.GetCounter("weft_xds_pushes_total", "Responses sent, by type.", {{"type", type}})
          .Inc();
      if (snapshot != nullptr) {
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - snapshot->created)
                             .count();
        service_.metrics_
            .GetHistogram("weft_xds_push_seconds",
                          "Time from a configuration snapshot to its response being queued.",
                          common::MetricsRegistry::LatencyBuckets())
            .Observe(seconds);
      }
      queue_.push_back(std::move(r));
    }
    status_.types = stream_.types();
    service_.tracker_.Update(status_);
  }

  void MaybeWrite() {
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || queue_.empty() || done_ || finishing_) return;
      writing_ = true;
      current_ = std::move(queue_.front());
      queue_.pop_front();
    }
    StartWrite(&current_);
  }

  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_ || done_) return;
      finishing_ = true;
    }
    if (!status.ok()) {
      WEFT_LOG(WARNING) << "closing xds stream " << stream_id_ << ": " << status.error_message();
    }
    Finish(status);
  }

  AdsService& service_;
  const uint64_t stream_id_;
  std::shared_ptr<SotwReactor> self_;
  DiscoveryRequest request_;     // owned by the outstanding read
  DiscoveryResponse current_;    // owned by the outstanding write
  std::string node_id_;          // set once by the read path

  absl::Mutex mu_;
  SotwStream stream_ ABSL_GUARDED_BY(mu_);
  std::deque<DiscoveryResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  ProxyStatus status_ ABSL_GUARDED_BY(mu_);
};

AdsService::AdsService(SnapshotCache& cache, ConfigPublisher& publisher, ProxyTracker& tracker,
                       common::MetricsRegistry& metrics)
    : cache_(cache), publisher_(publisher), tracker_(tracker), metrics_(metrics) {}

grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse>* AdsService::StreamAggregatedResources(
    grpc::CallbackServerContext* context) {
  auto reactor = std::make_shared<SotwReactor>(*this, context, next_stream_id_++);
  SotwReactor* raw = reactor.get();
  raw->Start(std::move(reactor));
  return raw;
}

}  // namespace weft::server
