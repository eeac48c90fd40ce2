#include "server/ads_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <deque>
#include <memory>
#include <optional>
#include <map>
#include <set>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "policy/resource_types.h"
#include "server/delta_stream.h"
#include "server/node_identity.h"
#include "server/raw_request.h"
#include "server/sotw_stream.h"

namespace weft::server {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

namespace {

// What differs between the two ADS variants, for AdsReactor.
struct SotwProtocol {
  using Request = DiscoveryRequest;
  using Stream = SotwStream;
  static constexpr const char* kName = "sotw";
  static bool IsNack(const Request& r) { return r.has_error_detail(); }
};

struct DeltaProtocol {
  using Request = DeltaDiscoveryRequest;
  using Stream = DeltaStream;
  static constexpr const char* kName = "delta";
  static bool IsNack(const Request& r) { return r.has_error_detail(); }
};

// One bit per pushed type (kPushOrder), one for any other: sets of types
// per stream without allocating.
uint32_t TypeBit(std::string_view type_url) {
  for (size_t i = 0; i < policy::kPushOrder.size(); ++i) {
    if (policy::kPushOrder[i] == type_url) return 1u << i;
  }
  return 1u << policy::kPushOrder.size();
}

}  // namespace

// One ADS stream of either variant. Owns itself through self_ until gRPC
// calls OnDone; cache watches hold only weak references. gRPC operations
// (StartRead/StartWrite/Finish) are started outside mu_, so a reaction that
// gRPC runs inline can never deadlock on it.
template <typename Protocol>
class AdsReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                         public std::enable_shared_from_this<AdsReactor<Protocol>> {
  using Request = typename Protocol::Request;
  using Stream = typename Protocol::Stream;
  using Event = typename Stream::Event;

 public:
  AdsReactor(AdsService& service, grpc::CallbackServerContext* context, uint64_t stream_id)
      : service_(service), stream_id_(stream_id) {
    if (auto auth = context->auth_context()) {
      for (const auto& value : auth->FindPropertyValues("x509_pem_cert")) {
        peer_cert_pem_.assign(value.data(), value.size());
      }
    }
    status_.stream_id = stream_id;
    status_.peer = context->peer();
    status_.protocol = Protocol::kName;
    status_.connected_at = std::chrono::system_clock::now();
  }

  void Start(std::shared_ptr<AdsReactor> self) {
    self_ = std::move(self);
    service_.connected_.Add(1);
    this->StartRead(&request_buffer_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed or the stream broke
      FinishOnce(grpc::Status::OK);
      return;
    }
    Request request;
    bool names_unchanged = false;
    uint64_t names_fingerprint = 0;
    bool parsed = true;
    if constexpr (std::is_same_v<Protocol, SotwProtocol>) {
      // SotW requests repeat the whole subscription: parse the names only
      // when they differ from what was last applied for the type.
      // One buffer per gRPC thread (not per stream: 2,000 streams would keep
      // 2,000 copies of their largest request).
      thread_local RawSotwRequest raw;
      parsed = ReadSotwRequest(request_buffer_, raw);
      if (parsed) {
        names_fingerprint = raw.names_fingerprint;
        auto it = names_fingerprints_.find(raw.request.type_url());
        names_unchanged = it != names_fingerprints_.end() && it->second == names_fingerprint;
        if (!names_unchanged) parsed = ParseNames(raw);
        request = std::move(raw.request);
      }
    } else {
      grpc::ProtoBufferReader reader(&request_buffer_);
      parsed = request.ParseFromZeroCopyStream(&reader);
    }
    if (!parsed) {
      service_.metrics_.GetCounter("weft_xds_bad_requests_total", "Requests that could not be parsed.").Inc();
      FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed discovery request"));
      return;
    }
    request_buffer_.Clear();
    grpc::Status error = Identify(request);
    if (!error.ok()) {
      FinishOnce(error);
      return;
    }
    if (request.type_url().empty()) {
      FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "type_url is required on ADS"));
      return;
    }
    ProxySnapshotConstSharedPtr snapshot = service_.cache_.GetSnapshot(node_id_);
    uint64_t release_slot = 0;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      typename Stream::Result result;
      if constexpr (std::is_same_v<Protocol, SotwProtocol>) {
        result = stream_.OnRequest(request, snapshot.get(), names_unchanged);
        // Remember the names only once the stream applied them (a stale
        // request's names are ignored, so they must be parsed next time).
        if (result.event != Event::kStale) names_fingerprints_[request.type_url()] = names_fingerprint;
      } else {
        result = stream_.OnRequest(request, snapshot.get());
      }
      RecordEventLocked(request, result.event);
      if (slot_types_ != 0 && (result.event == Event::kAck || result.event == Event::kNack)) {
        slot_types_ &= ~TypeBit(request.type_url());
        if (slot_types_ == 0) release_slot = std::exchange(slot_, 0);
      }
      if (deferred_change_ && snapshot && !result.responses.empty()) {
        // The ACK let a held-back change out.
        TrackPushLocked(*snapshot, result.responses);
      }
      // Answers to requests are not pushes: no push latency to record.
      EnqueueLocked(std::move(result.responses), nullptr);
    }
    if (release_slot != 0) service_.window_.Release(release_slot);
    MaybeWrite();
    this->StartRead(&request_buffer_);
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

  void OnDone() override {
    uint64_t watch_id;
    uint64_t release_slot;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      watch_id = watch_id_;
      release_slot = std::exchange(slot_, 0);
      slot_types_ = 0;
    }
    if (release_slot != 0) service_.window_.Release(release_slot);
    if (watch_id != 0) service_.cache_.CancelWatch(watch_id);
    if (!node_id_.empty()) service_.publisher_.DisconnectNode(node_id_);
    service_.tracker_.Remove(stream_id_);
    service_.connected_.Add(-1);
    WEFT_LOG(INFO) << "xds " << Protocol::kName << " stream " << stream_id_ << " closed (node "
                   << node_id_ << ")";
    self_.reset();  // may delete this
  }

  // From a SnapshotCache watch (any thread).
  void OnSnapshot(const ProxySnapshotConstSharedPtr& snapshot) {
    bool need_slot;
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finishing_) return;
      need_slot = slot_ == 0;
    }
    // A push waits for a PushWindow slot; a stream still answering an
    // earlier push keeps the one it holds.
    uint64_t taken = need_slot ? service_.window_.Acquire(SnapshotCache::InFanout()) : 0;
    bool late_slot = false;
    {
      absl::MutexLock lock(&mu_);
      std::vector<OutgoingResponse> responses;
      if (!done_ && !finishing_) responses = stream_.OnSnapshot(*snapshot);
      for (const auto& r : responses) slot_types_ |= TypeBit(r.type_url);
      if (slot_types_ != 0 && slot_ == 0) {
        slot_ = std::exchange(taken, 0);
        // Answers between the two locks gave back the slot this push needs.
        late_slot = slot_ == 0;
      }
      if (done_ || finishing_) {
        // Nothing more to do.
      } else if (!responses.empty()) {
        TrackPushLocked(*snapshot, responses);
      } else if (AwaitingAckLocked()) {
        // SotW holds the change back until the outstanding response is
        // answered; its clock runs from now.
        if (!deferred_change_) deferred_change_ = snapshot->created;
      } else if (!pending_apply_) {
        status_.applied_mesh_version = snapshot->mesh_version;  // nothing changed for it
      }
      EnqueueLocked(std::move(responses), snapshot.get());
    }
    // Not used: nothing was pushed, the stream closed meanwhile, or it
    // already holds one.
    if (taken != 0) service_.window_.Release(taken);
    if (late_slot) {
      uint64_t slot = service_.window_.Acquire(/*may_wait=*/false);
      {
        absl::MutexLock lock(&mu_);
        if (slot_ == 0 && slot_types_ != 0) slot_ = std::exchange(slot, 0);
      }
      if (slot != 0) service_.window_.Release(slot);
    }
    MaybeWrite();
  }

 private:
  // The first request names the node; later ones may leave it out.
  grpc::Status Identify(const Request& request) {
    if (!node_id_.empty()) return grpc::Status::OK;
    if (!request.has_node() || request.node().id().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the first request on a stream must carry node.id");
    }
    policy::ProxyIdentity identity = IdentityFromNode(request.node());
    if (service_.authenticate_peer_) {
      // The TLS port: the certificate, not the node, says who this is.
      if (peer_cert_pem_.empty()) {
        service_.metrics_.GetCounter("weft_xds_unauthenticated_total", "xDS streams refused: no valid mesh certificate.")
            .Inc();
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                            "present a mesh certificate (from CreateCertificate) as the TLS client certificate");
      }
      absl::StatusOr<ca::SpiffeId> peer = service_.authenticate_peer_(peer_cert_pem_);
      if (!peer.ok()) {
        service_.metrics_.GetCounter("weft_xds_unauthenticated_total", "xDS streams refused: no valid mesh certificate.")
            .Inc();
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                            "client certificate refused: " + std::string(peer.status().message()));
      }
      identity.namespace_ = peer->namespace_;
      identity.service_account = peer->service_account;
    }
    node_id_ = request.node().id();
    {
      absl::MutexLock lock(&mu_);
      status_.node_id = node_id_;
      status_.user_agent = request.node().user_agent_name();
      status_.identity = identity;
    }
    // Listed from now on; Remove (in OnDone) waits for a read in progress.
    service_.tracker_.Add(stream_id_, [this] {
      absl::MutexLock lock(&mu_);
      ProxyStatus status = status_;
      status.types = stream_.types();
      return status;
    });
    std::weak_ptr<AdsReactor> weak = this->weak_from_this();
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
    WEFT_LOG(INFO) << "xds " << Protocol::kName << " stream " << stream_id_ << " from "
                   << status_.peer << ": node " << node_id_ << " ("
                   << request.node().user_agent_name() << ", namespace " << identity.namespace_
                   << ", service account " << identity.service_account << ")";
    return grpc::Status::OK;
  }

  void RecordEventLocked(const Request& request, Event event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    AdsService::TypeMetrics& metrics = MetricsLocked(request.type_url());
    if (event == Event::kAck) {
      metrics.acks->Inc();
      const TypeState& state = stream_.types().at(request.type_url());
      if (pending_apply_ && state.acked_mesh_version >= pending_apply_) {
        pending_types_ &= ~TypeBit(request.type_url());
        if (pending_types_ == 0) {
          double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - pending_change_).count();
          service_.convergence_.Observe(seconds);
          status_.applied_mesh_version = pending_apply_;
          status_.applied_at = std::chrono::system_clock::now();
          pending_apply_ = 0;
        }
      }
    } else if (event == Event::kNack) {
      metrics.nacks->Inc();
      const std::string_view type = policy::ShortTypeName(request.type_url());
      const TypeState& state = stream_.types().at(request.type_url());
      std::string names;
      for (const auto& n : state.nacked_resources) names += (names.empty() ? "" : ", ") + n;
      std::set<std::string> source_set;
      for (const auto& n : state.nacked_resources) {
        if (const policy::Resource* r = state.sent.base ? state.sent.base->Find(n) : nullptr) {
          source_set.insert(r->sources.begin(), r->sources.end());
        }
      }
      std::string sources;
      for (const auto& s : source_set) sources += (sources.empty() ? "" : ", ") + s;
      WEFT_LOG(WARNING) << "NACK from " << node_id_ << " for " << type << " [" << names
                        << "] (from " << sources << "): " << request.error_detail().message()
                        << "; the proxy keeps its last good configuration";
    } else if (event == Event::kStale) {
      metrics.stale->Inc();
    }
  }

  // Convergence: `snapshot` is applied once every type these responses
  // carry is ACKed; its clock started with the oldest change not applied.
  void TrackPushLocked(const ProxySnapshot& snapshot, const std::vector<OutgoingResponse>& responses)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!pending_apply_) pending_change_ = deferred_change_.value_or(snapshot.created);
    deferred_change_.reset();
    pending_apply_ = snapshot.mesh_version;
    for (const auto& r : responses) pending_types_ |= TypeBit(r.type_url);
  }

  // SotW only: delta never holds a change back.
  bool AwaitingAckLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if constexpr (std::is_same_v<Protocol, SotwProtocol>) {
      for (const auto& [type, state] : stream_.types()) {
        if (state.awaiting_ack) return true;
      }
    }
    return false;
  }

  AdsService::TypeMetrics& MetricsLocked(const std::string& type_url) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = type_metrics_.find(type_url);
    if (it == type_metrics_.end()) it = type_metrics_.emplace(type_url, service_.MetricsFor(type_url)).first;
    return *it->second;
  }

  void EnqueueLocked(std::vector<OutgoingResponse> responses, const ProxySnapshot* snapshot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (responses.empty()) return;
    for (auto& r : responses) {
      MetricsLocked(r.type_url).pushes->Inc();
      if (snapshot != nullptr) {
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - snapshot->created).count();
        service_.push_seconds_.Observe(seconds);
      }
      queue_.push_back(std::move(r));
    }
  }

  void MaybeWrite() {
    OutgoingResponse next;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || queue_.empty() || done_ || finishing_) return;
      writing_ = true;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    // Encoded only now: a queued response costs a few pointers, not its bytes.
    current_ = next.Encode();
    service_.bytes_sent_.Inc(static_cast<double>(current_.Length()));
    this->StartWrite(&current_);
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
    this->Finish(status);
  }

  AdsService& service_;
  const uint64_t stream_id_;
  std::shared_ptr<AdsReactor> self_;
  grpc::ByteBuffer request_buffer_;  // owned by the outstanding read
  grpc::ByteBuffer current_;         // owned by the outstanding write
  std::string node_id_;  // set once by the read path
  std::string peer_cert_pem_;  // the TLS client certificate, if any
  std::map<std::string, uint64_t> names_fingerprints_;  // read path only: SotW names last applied

  absl::Mutex mu_;
  Stream stream_ ABSL_GUARDED_BY(mu_);
  std::deque<OutgoingResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  ProxyStatus status_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_apply_ ABSL_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point pending_change_ ABSL_GUARDED_BY(mu_);
  std::optional<std::chrono::steady_clock::time_point> deferred_change_ ABSL_GUARDED_BY(mu_);
  uint32_t pending_types_ ABSL_GUARDED_BY(mu_) = 0;  // TypeBit of each
  // Types of a push answered neither by ACK nor NACK yet, and the
  // PushWindow slot the push holds until they are.
  uint32_t slot_types_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t slot_ ABSL_GUARDED_BY(mu_) = 0;  // the PushWindow slot held (0: none)
  std::map<std::string, AdsService::TypeMetrics*, std::less<>> type_metrics_ ABSL_GUARDED_BY(mu_);
};

AdsService::AdsService(SnapshotCache& cache, ConfigPublisher& publisher, ProxyTracker& tracker,
                       common::MetricsRegistry& metrics, PeerAuthenticator authenticate_peer, PushWindow* window)
    : cache_(cache),
      publisher_(publisher),
      tracker_(tracker),
      metrics_(metrics),
      authenticate_peer_(std::move(authenticate_peer)),
      window_(window != nullptr ? *window : own_window_),
      connected_(metrics.GetGauge("weft_xds_connected_streams", "Open xDS streams.")),
      bytes_sent_(metrics.GetCounter("weft_xds_bytes_sent_total", "Bytes of xDS responses sent.")),
      convergence_(metrics.GetHistogram("weft_xds_convergence_seconds",
                                        "Time from a mesh change to its ACK by an affected proxy.",
                                        common::MetricsRegistry::LatencyBuckets())),
      push_seconds_(metrics.GetHistogram("weft_xds_push_seconds",
                                         "Time from a mesh change to its push being queued.",
                                         common::MetricsRegistry::LatencyBuckets())) {}

AdsService::TypeMetrics* AdsService::MetricsFor(const std::string& type_url) {
  // Keyed by the short name ("unknown" for types Weft does not serve): type
  // URLs come from clients, and the map must not grow with what they send.
  const std::string type(policy::ShortTypeName(type_url));
  absl::MutexLock lock(&type_metrics_mu_);
  auto& slot = type_metrics_[type];
  if (!slot) {
    const common::Labels labels = {{"type", type}};
    slot = std::make_unique<TypeMetrics>(TypeMetrics{
        &metrics_.GetCounter("weft_xds_acks_total", "ACKs received, by type.", labels),
        &metrics_.GetCounter("weft_xds_nacks_total", "NACKs received, by type.", labels),
        &metrics_.GetCounter("weft_xds_stale_requests_total",
                             "Requests whose nonce was not the latest (ignored as ACKs).", labels),
        &metrics_.GetCounter("weft_xds_pushes_total", "Responses sent, by type.", labels)});
  }
  return slot.get();
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AdsService::StreamAggregatedResources(
    grpc::CallbackServerContext* context) {
  auto reactor = std::make_shared<AdsReactor<SotwProtocol>>(*this, context, next_stream_id_++);
  auto* raw = reactor.get();
  raw->Start(std::move(reactor));
  return raw;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AdsService::DeltaAggregatedResources(
    grpc::CallbackServerContext* context) {
  auto reactor = std::make_shared<AdsReactor<DeltaProtocol>>(*this, context, next_stream_id_++);
  auto* raw = reactor.get();
  raw->Start(std::move(reactor));
  return raw;
}

}  // namespace weft::server
