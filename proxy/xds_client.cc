#include "proxy/xds_client.h"

#include <grpcpp/grpcpp.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace weft::proxy {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

const char* const kTypes[] = {kClusterType, kEndpointType, kListenerType, kRouteType, kSecretType};

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
    if (active_ != nullptr) active_->TryCancel();
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void XdsClient::SetContext(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  active_ = ctx;
  if (ctx != nullptr && stopping_) ctx->TryCancel();
  status_.connected = false;
}

XdsClient::Status XdsClient::GetStatus() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

namespace {
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const std::string& server_name,
                                           WorkloadCertificate& certificate) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = certificate.ServerTrustBundle();
  if (auto id = certificate.Current()) {
    ssl.pem_private_key = id->key_pem;
    ssl.pem_cert_chain = id->chain_pem;
  }
  grpc::ChannelArguments args;
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}
}  // namespace

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
  auto channel = MakeChannel(options_.target, options_.server_name, certificate_);
  auto stub = AggregatedDiscoveryService::NewStub(channel);
  grpc::ClientContext ctx;
  SetContext(&ctx);
  auto stream = stub->DeltaAggregatedResources(&ctx);
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
    if (!stream->Write(req)) break;
  }
  bool got_any = false;
  DeltaDiscoveryResponse resp;
  while (stream->Read(&resp)) {
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
      ack.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      ack.mutable_error_detail()->set_message(std::string(applied.message()));
    } else {
      WEFT_LOG(DEBUG) << "xDS: ACK " << ShortType(type) << " " << resp.resources_size() << " resources, "
                      << resp.removed_resources_size() << " removed";
      absl::MutexLock lock(&mu_);
      status_.versions[ShortType(type)] = resp.system_version_info().empty() ? resp.nonce() : resp.system_version_info();
    }
    if (!stream->Write(ack)) break;
  }
  grpc::Status st = stream->Finish();
  SetContext(nullptr);
  metrics_.GetGauge("weft_proxy_xds_connected", "1 while the ADS stream is up").Set(0);
  if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED && !got_any) return false;
  if (!stopping_) {
    WEFT_LOG(WARNING) << "xDS: stream closed: " << st.error_code() << " " << st.error_message();
  }
  return true;
}

void XdsClient::RunSotw() {
  auto channel = MakeChannel(options_.target, options_.server_name, certificate_);
  auto stub = AggregatedDiscoveryService::NewStub(channel);
  grpc::ClientContext ctx;
  SetContext(&ctx);
  auto stream = stub->StreamAggregatedResources(&ctx);
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
      req.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      req.mutable_error_detail()->set_message(error);
    }
    return stream->Write(req);
  };
  state[kSecretType].names = {"ROOTCA"};
  state[kEndpointType].names = ReferencedEndpointNames(held_);
  state[kRouteType].names = ReferencedRouteNames(held_);
  bool ok = send(kClusterType, "") && send(kListenerType, "") && send(kSecretType, "");
  if (ok && !state[kEndpointType].names.empty()) ok = send(kEndpointType, "");
  if (ok && !state[kRouteType].names.empty()) ok = send(kRouteType, "");
  DiscoveryResponse resp;
  bool got_any = false;
  while (ok && stream->Read(&resp)) {
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
  grpc::Status st = stream->Finish();
  SetContext(nullptr);
  metrics_.GetGauge("weft_proxy_xds_connected", "1 while the ADS stream is up").Set(0);
  if (!stopping_) {
    WEFT_LOG(WARNING) << "xDS: stream closed: " << st.error_code() << " " << st.error_message();
  }
}

}  // namespace weft::proxy
