#include "proxy/xds_client.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "proxy/grpc_call.h"

namespace weft::proxy {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

const char* const kTypes[] = {kClusterType, kEndpointType, kListenerType, kRouteType, kSecretType};
constexpr char kDeltaMethod[] =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
constexpr char kSotwMethod[] =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
constexpr int kInvalidArgument = static_cast<int>(absl::StatusCode::kInvalidArgument);  // gRPC's number too

// The name of a resource in a state-of-the-world response.
std::string ResourceName(const google::protobuf::Any& any) {
  if (envoy::config::cluster::v3::Cluster c; any.Is<decltype(c)>() && c.ParseFromString(any.value())) return c.name();
  if (envoy::config::endpoint::v3::ClusterLoadAssignment c; any.Is<decltype(c)>() && c.ParseFromString(any.value())) {
    return c.cluster_name();
  }
  if (envoy::config::listener::v3::Listener c; any.Is<decltype(c)>() && c.ParseFromString(any.value())) return c.name();
  if (envoy::config::route::v3::RouteConfiguration c; any.Is<decltype(c)>() && c.ParseFromString(any.value())) {
    return c.name();
  }
  if (envoy::extensions::transport_sockets::tls::v3::Secret c; any.Is<decltype(c)>() && c.ParseFromString(any.value())) {
    return c.name();
  }
  return "";
}

}  // namespace

XdsClient::XdsClient(Options options, WorkloadCertificate& certificate, common::MetricsRegistry& metrics,
                     ConfigCallback on_config)
    : options_(std::move(options)), certificate_(certificate), metrics_(metrics), on_config_(std::move(on_config)) {}

XdsClient::~XdsClient() { Stop(); }

void XdsClient::Start() { thread_ = std::thread([this] { Run(); }); }

void XdsClient::Stop() {
  stopping_ = true;
  {
    absl::MutexLock lock(&mu_);
    if (active_ != nullptr) active_->Cancel();
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void XdsClient::SetCall(GrpcCall* call) {
  absl::MutexLock lock(&mu_);
  active_ = call;
  if (call != nullptr && stopping_) call->Cancel();
  status_.connected = false;
}

XdsClient::Status XdsClient::GetStatus() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void XdsClient::Run() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = std::chrono::milliseconds(250);
  bool use_delta = options_.prefer_delta;
  while (!stopping_) {
    uint64_t before = GetStatus().updates + GetStatus().rejected;
    if (use_delta) {
      if (!RunDelta()) {
        WEFT_LOG(INFO) << "xDS: the server does not implement delta ADS; using state of the world";
        use_delta = false;
        continue;
      }
    } else {
      RunSotw();
    }
    if (stopping_) break;
    metrics_.GetCounter("weft_proxy_xds_reconnects_total", "ADS streams reopened").Inc();
    if (GetStatus().updates + GetStatus().rejected > before) backoff = std::chrono::milliseconds(250);
    auto wait = backoff / 2 + std::chrono::milliseconds(rng() % (backoff.count() / 2 + 1));
    WEFT_LOG(INFO) << "xDS: reconnecting in " << wait.count() << " ms";
    absl::MutexLock lock(&mu_);
    wake_.WaitWithTimeout(&mu_, absl::FromChrono(wait));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(15000));
  }
}

absl::Status XdsClient::Apply(const std::string& type_url, const std::function<void(XdsResources&)>& change) {
  XdsResources candidate = held_;
  change(candidate);
  candidate.by_type[type_url];  // the type has now been received, even if empty
  auto config = ProxyConfig::Build(candidate);
  const std::string type = ShortType(type_url);
  if (!config.ok()) {
    metrics_.GetCounter("weft_proxy_config_rejected_total", "xDS updates NACKed", {{"type", type}}).Inc();
    absl::MutexLock lock(&mu_);
    status_.rejected++;
    status_.last_nack[type] = std::string(config.status().message());
    return config.status();
  }
  held_ = std::move(candidate);
  metrics_.GetCounter("weft_proxy_config_updates_total", "xDS updates accepted", {{"type", type}}).Inc();
  {
    absl::MutexLock lock(&mu_);
    status_.updates++;
    status_.last_nack.erase(type);
  }
  if (held_.Type(kClusterType) != nullptr && held_.Type(kListenerType) != nullptr) initial_config_ = true;
  on_config_(*config);
  return absl::OkStatus();
}

bool XdsClient::RunDelta() {
  WorkloadIdentityConstSharedPtr identity;
  GrpcCall call(certificate_.CallOptions(options_.target, options_.server_name, &identity));
  SetCall(&call);
  const bool started = call.Start(kDeltaMethod).ok();
  identity.reset();
  bool first = true;
  for (const char* type : kTypes) {
    DeltaDiscoveryRequest req;
    if (first) *req.mutable_node() = options_.node;
    first = false;
    req.set_type_url(type);
    req.add_resource_names_subscribe(std::string(type) == kSecretType ? "ROOTCA" : "*");
    if (const auto* held = held_.Type(type)) {
      for (const auto& [name, entry] : *held) (*req.mutable_initial_resource_versions())[name] = entry.version;
    }
    if (!started || !call.Write(req)) break;
  }
  bool got_any = false;
  DeltaDiscoveryResponse resp;
  while (started && call.Read(&resp)) {
    if (!got_any) {
      WEFT_LOG(INFO) << "xDS: delta ADS stream to " << options_.target << " established";
      absl::MutexLock lock(&mu_);
      status_.connected = true;
      status_.protocol = "delta";
    }
    got_any = true;
    metrics_.GetGauge("weft_proxy_xds_connected", "1 while the ADS stream is up").Set(1);
    const std::string type = resp.type_url();
    absl::Status applied = Apply(type, [&](XdsResources& r) {
      auto& m = r.by_type[type];
      for (const auto& name : resp.removed_resources()) m.erase(name);
      for (const auto& res : resp.resources()) {
        if (!res.has_resource()) {
          m.erase(res.name());
          continue;
        }
        m[res.name()] = {res.resource(), res.version()};
      }
    });
    DeltaDiscoveryRequest ack;
    ack.set_type_url(type);
    ack.set_response_nonce(resp.nonce());
    if (!applied.ok()) {
      WEFT_LOG(WARNING) << "xDS: NACK " << ShortType(type) << " (nonce " << resp.nonce() << "): " << applied.message();
      ack.mutable_error_detail()->set_code(kInvalidArgument);
      ack.mutable_error_detail()->set_message(std::string(applied.message()));
    } else {
      WEFT_LOG(DEBUG) << "xDS: ACK " << ShortType(type) << " " << resp.resources_size() << " resources, "
                      << resp.removed_resources_size() << " removed";
      absl::MutexLock lock(&mu_);
      status_.versions[ShortType(type)] = resp.system_version_info().empty() ? resp.nonce() : resp.system_version_info();
    }
    if (!call.Write(ack)) break;
  }
  absl::Status st = call.Finish();
  SetCall(nullptr);
  metrics_.GetGauge("weft_proxy_xds_connected", "1 while the ADS stream is up").Set(0);
  if (st.code() == absl::StatusCode::kUnimplemented && !got_any) return false;
  if (!stopping_) WEFT_LOG(WARNING) << "xDS: stream closed: " << st;
  return true;
}

void XdsClient::RunSotw() {
  WorkloadIdentityConstSharedPtr identity;
  GrpcCall call(certificate_.CallOptions(options_.target, options_.server_name, &identity));
  SetCall(&call);
  const bool started = call.Start(kSotwMethod).ok();
  identity.reset();
  struct TypeState {
    std::string version, nonce;
    std::vector<std::string> names;
    bool requested = false;
  };
  std::map<std::string, TypeState> state;
  bool first = true;
  auto send = [&](const std::string& type, const std::string& error) {
    DiscoveryRequest req;
    if (first) *req.mutable_node() = options_.node;
    first = false;
    TypeState& s = state[type];
    s.requested = true;
    req.set_type_url(type);
    req.set_version_info(s.version);
    req.set_response_nonce(s.nonce);
    for (const auto& n : s.names) req.add_resource_names(n);
    if (!error.empty()) {
      req.mutable_error_detail()->set_code(kInvalidArgument);
      req.mutable_error_detail()->set_message(error);
    }
    return call.Write(req);
  };
  state[kSecretType].names = {"ROOTCA"};
  state[kEndpointType].names = ReferencedEndpointNames(held_);
  state[kRouteType].names = ReferencedRouteNames(held_);
  bool ok = started && send(kClusterType, "") && send(kListenerType, "") && send(kSecretType, "");
  if (ok && !state[kEndpointType].names.empty()) ok = send(kEndpointType, "");
  if (ok && !state[kRouteType].names.empty()) ok = send(kRouteType, "");
  DiscoveryResponse resp;
  bool got_any = false;
  while (ok && call.Read(&resp)) {
    if (!got_any) {
      WEFT_LOG(INFO) << "xDS: state-of-the-world ADS stream to " << options_.target << " established";
      absl::MutexLock lock(&mu_);
      status_.connected = true;
      status_.protocol = "sotw";
    }
    got_any = true;
    metrics_.GetGauge("weft_proxy_xds_connected", "1 while the ADS stream is up").Set(1);
    const std::string type = resp.type_url();
    absl::Status applied = Apply(type, [&](XdsResources& r) {
      auto& m = r.by_type[type];
      m.clear();
      for (const auto& any : resp.resources()) m[ResourceName(any)] = {any, resp.version_info()};
    });
    TypeState& s = state[type];
    s.nonce = resp.nonce();
    if (applied.ok()) {
      s.version = resp.version_info();
      absl::MutexLock lock(&mu_);
      status_.versions[ShortType(type)] = resp.version_info();
    } else {
      WEFT_LOG(WARNING) << "xDS: NACK " << ShortType(type) << " version " << resp.version_info() << ": "
                        << applied.message();
    }
    ok = send(type, applied.ok() ? "" : std::string(applied.message()));
    // Follow the names the clusters and listeners reference.
    for (auto [dependent, names] : {std::pair{kEndpointType, ReferencedEndpointNames(held_)},
                                    std::pair{kRouteType, ReferencedRouteNames(held_)}}) {
      TypeState& d = state[dependent];
      if (ok && (names != d.names || !d.requested) && !names.empty()) {
        d.names = names;
        ok = send(dependent, "");
      }
    }
  }
  absl::Status st = call.Finish();
  SetCall(nullptr);
  metrics_.GetGauge("weft_proxy_xds_connected", "1 while the ADS stream is up").Set(0);
  if (!stopping_) WEFT_LOG(WARNING) << "xDS: stream closed: " << st;
}

}  // namespace weft::proxy
