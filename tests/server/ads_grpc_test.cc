// Protocol tests over real gRPC: the ADS service in process on 127.0.0.1:0,
// driven by scripted state-of-the-world and delta clients through the
// generated stubs, fed by mesh snapshots through the ConfigPublisher.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "policy/resource_types.h"
#include "server/ads_service.h"
#include "server/config_publisher.h"
#include "server/proxy_tracker.h"
#include "server/push_window.h"
#include "server/snapshot_cache.h"

namespace weft::server {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using namespace std::chrono_literals;

const std::string kLds(policy::kListenerType);
const std::string kRds(policy::kRouteType);
const std::string kCds(policy::kClusterType);
const std::string kEds(policy::kEndpointType);

std::shared_ptr<discovery::MeshSnapshot> Mesh(uint64_t version, const std::map<std::string, uint32_t>& services) {
  auto mesh = std::make_shared<discovery::MeshSnapshot>();
  mesh->version = version;
  for (const auto& [name, port] : services) {
    discovery::Service svc;
    svc.meta.name = name;
    svc.meta.namespace_ = "default";
    svc.selector = {{"app", name}};
    svc.ports.push_back({"grpc", 50051, 0, "", "TCP", ""});
    mesh->services["default/" + name] = svc;
    discovery::Workload w;
    w.meta.name = name + "-0";
    w.meta.namespace_ = "default";
    w.meta.labels = {{"app", name}};
    w.address = "127.0.0.1";
    w.ports = {{"grpc", port}};
    mesh->workloads["default/" + name + "-0"] = w;
  }
  return mesh;
}

std::string Cluster(const std::string& svc) { return "outbound|50051||" + svc + ".default.svc.cluster.local"; }

struct Server {
  common::MetricsRegistry metrics;
  SnapshotCache cache;
  ProxyTracker tracker;
  ConfigPublisher publisher{cache, metrics};
  PushWindow window;
  AdsService ads{cache, publisher, tracker, metrics, nullptr, &window};
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  // `window`: at most that many proxies with an unanswered push (0: any).
  explicit Server(size_t window_size = 0) : window(window_size, absl::Seconds(30), &metrics) {
    publisher.OnMeshSnapshot(Mesh(1, {{"alpha", 9001}, {"beta", 9002}}));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&ads);
    server = builder.BuildAndStart();
    REQUIRE(server);
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now() + 1s); }
  std::unique_ptr<AggregatedDiscoveryService::Stub> Stub() {
    return AggregatedDiscoveryService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
};

// A bidi stream with a reader thread, so that tests can also assert that
// nothing arrives.
template <typename Req, typename Resp>
class ScriptedClient {
 public:
  template <typename Open>
  explicit ScriptedClient(Open open) {
    ctx_.set_deadline(std::chrono::system_clock::now() + 60s);
    stream_ = open(&ctx_);
    reader_ = std::thread([this] {
      Resp r;
      while (stream_->Read(&r)) {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(r);
        cv_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
    });
  }
  ~ScriptedClient() {
    if (!reader_.joinable()) return;  // Finish() already ended the stream
    stream_->WritesDone();
    ctx_.TryCancel();
    reader_.join();
  }
  void Send(const Req& r) { REQUIRE(stream_->Write(r)); }
  // The next response, failing the test after `timeout`.
  Resp Next(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock<std::mutex> lock(mu_);
    bool got = cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || closed_; });
    REQUIRE(got);
    REQUIRE(!queue_.empty());
    Resp r = queue_.front();
    queue_.pop_front();
    return r;
  }
  // True when nothing arrives within `wait`.
  bool Quiet(std::chrono::milliseconds wait = 300ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, wait, [&] { return !queue_.empty(); });
  }
  grpc::Status Finish() {
    reader_.join();
    return stream_->Finish();
  }
  bool Closed(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, wait, [&] { return closed_; });
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<Req, Resp>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Resp> queue_;
  bool closed_ = false;
};

using SotwClient = ScriptedClient<DiscoveryRequest, DiscoveryResponse>;
using DeltaClient = ScriptedClient<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

DiscoveryRequest Sotw(const std::string& type, std::vector<std::string> names, const DiscoveryResponse* ack = nullptr,
                      const std::string& node = "") {
  DiscoveryRequest r;
  r.set_type_url(type);
  for (auto& n : names) r.add_resource_names(n);
  if (ack != nullptr) {
    r.set_version_info(ack->version_info());
    r.set_response_nonce(ack->nonce());
  }
  if (!node.empty()) r.mutable_node()->set_id(node);
  return r;
}

DeltaDiscoveryRequest Delta(const std::string& type, std::vector<std::string> subscribe,
                            std::vector<std::string> unsubscribe = {}, const std::string& nonce = "",
                            const std::string& node = "") {
  DeltaDiscoveryRequest r;
  r.set_type_url(type);
  for (auto& n : subscribe) r.add_resource_names_subscribe(n);
  for (auto& n : unsubscribe) r.add_resource_names_unsubscribe(n);
  r.set_response_nonce(nonce);
  if (!node.empty()) r.mutable_node()->set_id(node);
  return r;
}

uint32_t EndpointPort(const DiscoveryResponse& r, int i = 0) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  REQUIRE(r.resources(i).UnpackTo(&cla));
  return cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value();
}

// Polls the tracker until the (single) proxy's `type` is in `state`.
bool WaitForState(Server& s, const std::string& type, const std::string& state) {
  for (int i = 0; i < 100; ++i) {
    auto proxies = s.tracker.List();
    if (proxies.size() == 1 && proxies[0].types.count(type) &&
        SyncState(proxies[0].types.at(type)) == state) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST_CASE("SotW over gRPC: subscribe, ACK, endpoint-only push, NACK kept, recovery", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  SotwClient c([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  c.Send(Sotw(kCds, {Cluster("alpha")}, nullptr, "proxyless~1.2.3.4~app.default~default.svc.cluster.local"));
  auto cds = c.Next();
  CHECK(cds.type_url() == kCds);
  CHECK(cds.resources_size() == 1);
  c.Send(Sotw(kCds, {Cluster("alpha")}, &cds));
  c.Send(Sotw(kEds, {Cluster("alpha")}));
  auto eds = c.Next();
  CHECK(EndpointPort(eds) == 9001);
  c.Send(Sotw(kEds, {Cluster("alpha")}, &eds));
  CHECK(c.Quiet());

  // Only alpha's endpoint moves: one EDS push, no CDS push.
  s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9101}, {"beta", 9002}}));
  auto eds2 = c.Next();
  CHECK(eds2.type_url() == kEds);
  CHECK(EndpointPort(eds2) == 9101);

  // The client rejects it: nothing is resent, the admin view says NACKED.
  DiscoveryRequest nack = Sotw(kEds, {Cluster("alpha")});
  nack.set_version_info(eds.version_info());
  nack.set_response_nonce(eds2.nonce());
  nack.mutable_error_detail()->set_message("endpoint port 9101 rejected");
  c.Send(nack);
  CHECK(c.Quiet());
  auto proxies = s.tracker.List();
  REQUIRE(proxies.size() == 1);
  CHECK(proxies[0].types.at(kEds).nacked);
  CHECK(proxies[0].types.at(kEds).nack_message == "endpoint port 9101 rejected");
  CHECK(SyncState(proxies[0].types.at(kEds)) == "NACKED");
  CHECK(proxies[0].types.at(kEds).nacked_resources == std::vector<std::string>{Cluster("alpha")});

  // A beta-only change does not touch alpha: nothing to send to this client.
  s.publisher.OnMeshSnapshot(Mesh(3, {{"alpha", 9101}, {"beta", 9202}}));
  CHECK(c.Quiet());
  // A fix for alpha goes out at once, and its ACK clears the NACK.
  s.publisher.OnMeshSnapshot(Mesh(4, {{"alpha", 9301}, {"beta", 9202}}));
  auto eds3 = c.Next();
  CHECK(EndpointPort(eds3) == 9301);
  c.Send(Sotw(kEds, {Cluster("alpha")}, &eds3));
  REQUIRE(WaitForState(s, kEds, "SYNCED"));
}

TEST_CASE("SotW over gRPC: the first request must name the node", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  SotwClient c([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  c.Send(Sotw(kCds, {}));
  REQUIRE(c.Closed(5000ms));
  grpc::Status status = c.Finish();
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("node") != std::string::npos);
}

TEST_CASE("SotW over gRPC: a deleted listener disappears and comes back when re-added", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  SotwClient c([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  c.Send(Sotw(kLds, {}, nullptr, "sidecar-less"));
  auto lds = c.Next();
  CHECK(lds.resources_size() == 2);  // wildcard: alpha and beta
  c.Send(Sotw(kLds, {}, &lds));
  s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9001}}));
  auto lds2 = c.Next();
  CHECK(lds2.resources_size() == 1);
  c.Send(Sotw(kLds, {}, &lds2));
  s.publisher.OnMeshSnapshot(Mesh(3, {{"alpha", 9001}, {"beta", 9002}}));
  auto lds3 = c.Next();
  CHECK(lds3.resources_size() == 2);
  CHECK(lds3.version_info() == lds.version_info());  // same content, same version
}

TEST_CASE("delta over gRPC: wildcard, per-resource updates, removals, unknown names", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  DeltaClient c([&](grpc::ClientContext* ctx) { return stub->DeltaAggregatedResources(ctx); });
  c.Send(Delta(kCds, {"*"}, {}, "", "sidecar~10.0.0.1~app.default~default.svc.cluster.local"));
  auto cds = c.Next();
  CHECK(cds.resources_size() == 2);
  c.Send(Delta(kCds, {}, {}, cds.nonce()));
  c.Send(Delta(kEds, {Cluster("alpha"), Cluster("ghost")}));
  auto eds = c.Next();
  REQUIRE(eds.resources_size() == 1);
  CHECK(eds.resources(0).name() == Cluster("alpha"));
  REQUIRE(eds.removed_resources_size() == 1);
  CHECK(eds.removed_resources(0) == Cluster("ghost"));
  c.Send(Delta(kEds, {}, {}, eds.nonce()));
  CHECK(c.Quiet());

  // beta removed: CDS says so; alpha's endpoints are untouched, no EDS push.
  s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9001}}));
  auto cds2 = c.Next();
  CHECK(cds2.type_url() == kCds);
  CHECK(cds2.resources_size() == 0);
  REQUIRE(cds2.removed_resources_size() == 1);
  CHECK(cds2.removed_resources(0) == Cluster("beta"));
  CHECK(c.Quiet());
  // Re-added: sent again.
  s.publisher.OnMeshSnapshot(Mesh(3, {{"alpha", 9001}, {"beta", 9002}}));
  auto cds3 = c.Next();
  REQUIRE(cds3.resources_size() == 1);
  CHECK(cds3.resources(0).name() == Cluster("beta"));

  auto proxies = s.tracker.List();
  REQUIRE(proxies.size() == 1);
  CHECK(proxies[0].protocol == "delta");
  CHECK(proxies[0].identity.namespace_ == "default");
}

TEST_CASE("SotW and delta clients on one server both follow a change", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  SotwClient sotw([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  DeltaClient delta([&](grpc::ClientContext* ctx) { return stub->DeltaAggregatedResources(ctx); });
  sotw.Send(Sotw(kEds, {Cluster("beta")}, nullptr, "proxyless-1"));
  delta.Send(Delta(kEds, {Cluster("beta")}, {}, "", "delta-1"));
  auto a = sotw.Next();
  auto b = delta.Next();
  sotw.Send(Sotw(kEds, {Cluster("beta")}, &a));
  delta.Send(Delta(kEds, {}, {}, b.nonce()));
  s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9001}, {"beta", 9555}}));
  CHECK(EndpointPort(sotw.Next()) == 9555);
  auto d = delta.Next();
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  REQUIRE(d.resources(0).resource().UnpackTo(&cla));
  CHECK(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value() == 9555);
}

}  // namespace
}  // namespace weft::server

namespace weft::server {
namespace {

// The histogram's sample count, read back from the registry.
uint64_t ConvergenceSamples(common::MetricsRegistry& metrics) {
  return metrics
      .GetHistogram("weft_xds_convergence_seconds", "Time from a mesh change to its ACK by an affected proxy.",
                    common::MetricsRegistry::LatencyBuckets())
      .Get()
      .count;
}

// Polls the tracker until the (single) proxy has applied `mesh_version`.
bool WaitForApplied(Server& s, uint64_t mesh_version) {
  for (int i = 0; i < 100; ++i) {
    auto proxies = s.tracker.List();
    if (proxies.size() == 1 && proxies[0].applied_mesh_version == mesh_version) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST_CASE("SotW over gRPC: convergence is recorded for a change held back until the ACK", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  SotwClient c([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  c.Send(Sotw(kEds, {Cluster("alpha")}, nullptr, "proxyless~1.2.3.4~app.default~default.svc.cluster.local"));
  auto eds = c.Next();
  c.Send(Sotw(kEds, {Cluster("alpha")}, &eds));
  REQUIRE(WaitForState(s, kEds, "SYNCED"));
  const uint64_t before = ConvergenceSamples(s.metrics);

  // Change 2 goes out; change 3 comes while it is unanswered and waits.
  const auto changed = std::chrono::steady_clock::now();
  s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9101}, {"beta", 9002}}), changed);
  auto eds2 = c.Next();
  CHECK(EndpointPort(eds2) == 9101);
  s.publisher.OnMeshSnapshot(Mesh(3, {{"alpha", 9201}, {"beta", 9002}}), changed + 1ms);
  CHECK(c.Quiet(200ms));
  c.Send(Sotw(kEds, {Cluster("alpha")}, &eds2));  // the ACK of 2 lets 3 out
  auto eds3 = c.Next();
  CHECK(EndpointPort(eds3) == 9201);
  c.Send(Sotw(kEds, {Cluster("alpha")}, &eds3));
  REQUIRE(WaitForState(s, kEds, "SYNCED"));
  // One sample per applied push, and the proxy shows the last change applied.
  CHECK(WaitForApplied(s, 3));
  CHECK(ConvergenceSamples(s.metrics) == before + 2);
}

TEST_CASE("delta over gRPC: every change is applied and timed", "[ads][grpc]") {
  Server s;
  auto stub = s.Stub();
  DeltaClient c([&](grpc::ClientContext* ctx) { return stub->DeltaAggregatedResources(ctx); });
  c.Send(Delta(kEds, {Cluster("alpha")}, {}, "", "proxyless~1.2.3.4~app.default~default.svc.cluster.local"));
  auto first = c.Next();
  c.Send(Delta(kEds, {}, {}, first.nonce()));
  REQUIRE(WaitForState(s, kEds, "SYNCED"));
  const uint64_t before = ConvergenceSamples(s.metrics);
  s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9101}, {"beta", 9002}}));
  s.publisher.OnMeshSnapshot(Mesh(3, {{"alpha", 9201}, {"beta", 9002}}));
  auto r2 = c.Next();
  auto r3 = c.Next();  // delta does not hold the second back
  c.Send(Delta(kEds, {}, {}, r2.nonce()));
  c.Send(Delta(kEds, {}, {}, r3.nonce()));
  REQUIRE(WaitForState(s, kEds, "SYNCED"));
  CHECK(WaitForApplied(s, 3));
  CHECK(ConvergenceSamples(s.metrics) > before);
}

// Polls the tracker until `count` proxies all have `type` SYNCED.
bool WaitForAllSynced(Server& s, size_t count, const std::string& type) {
  for (int i = 0; i < 100; ++i) {
    auto proxies = s.tracker.List();
    size_t synced = 0;
    for (const auto& p : proxies) synced += p.types.count(type) && SyncState(p.types.at(type)) == "SYNCED";
    if (proxies.size() == count && synced == count) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST_CASE("SotW over gRPC: with --push-window=1 a push waits until the proxy pushed before answers", "[ads][grpc]") {
  Server s(/*window_size=*/1);
  auto stub = s.Stub();
  SotwClient a([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  SotwClient b([&](grpc::ClientContext* ctx) { return stub->StreamAggregatedResources(ctx); });
  a.Send(Sotw(kEds, {Cluster("alpha")}, nullptr, "proxy-a"));
  b.Send(Sotw(kEds, {Cluster("alpha")}, nullptr, "proxy-b"));
  auto a1 = a.Next();
  auto b1 = b.Next();
  a.Send(Sotw(kEds, {Cluster("alpha")}, &a1));
  b.Send(Sotw(kEds, {Cluster("alpha")}, &b1));
  // Both ACKs are in (a change would otherwise wait for them and go out as
  // their answer). Answers to requests take no slot.
  REQUIRE(WaitForAllSynced(s, 2, kEds));
  CHECK(s.window.in_use() == 0);

  // The fan-out runs on its own thread: it waits for an answer.
  std::thread fanout([&] { s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9101}, {"beta", 9002}})); });
  // Exactly one proxy gets the change first; the other hears nothing yet.
  SotwClient* first = nullptr;
  SotwClient* second = nullptr;
  for (int i = 0; i < 250 && first == nullptr; ++i) {
    if (!a.Quiet(20ms)) {
      first = &a;
      second = &b;
    } else if (!b.Quiet(1ms)) {
      first = &b;
      second = &a;
    }
  }
  REQUIRE(first != nullptr);
  auto pushed = first->Next();
  CHECK(EndpointPort(pushed) == 9101);
  CHECK(second->Quiet(300ms));
  CHECK(s.window.in_use() == 1);
  // Its ACK frees the slot, and the other proxy gets the change.
  first->Send(Sotw(kEds, {Cluster("alpha")}, &pushed));
  auto pushed2 = second->Next();
  CHECK(EndpointPort(pushed2) == 9101);
  fanout.join();
  // A NACK answers too.
  DiscoveryRequest nack = Sotw(kEds, {Cluster("alpha")});
  nack.set_response_nonce(pushed2.nonce());
  nack.mutable_error_detail()->set_message("rejected");
  second->Send(nack);
  for (int i = 0; i < 100 && s.window.in_use() != 0; ++i) std::this_thread::sleep_for(20ms);
  CHECK(s.window.in_use() == 0);
  CHECK(s.metrics.GetCounter("weft_xds_push_window_waits_total", "").Value() >= 1);
}

TEST_CASE("delta over gRPC: a closed stream gives its push-window slot back", "[ads][grpc]") {
  Server s(/*window_size=*/1);
  auto stub = s.Stub();
  auto open = [&](DeltaClient& c, const std::string& node) {
    c.Send(Delta(kEds, {Cluster("alpha")}, {}, "", node));
    auto first = c.Next();
    c.Send(Delta(kEds, {}, {}, first.nonce()));
  };
  auto a = std::make_unique<DeltaClient>([&](grpc::ClientContext* ctx) { return stub->DeltaAggregatedResources(ctx); });
  DeltaClient b([&](grpc::ClientContext* ctx) { return stub->DeltaAggregatedResources(ctx); });
  open(*a, "proxy-a");
  open(b, "proxy-b");
  REQUIRE(WaitForAllSynced(s, 2, kEds));
  std::thread fanout([&] { s.publisher.OnMeshSnapshot(Mesh(2, {{"alpha", 9101}, {"beta", 9002}})); });
  // Whichever got it first: if it was `a`, closing it (without answering)
  // lets `b` have the change; if it was `b`, it has it already.
  a.reset();
  auto r = b.Next();
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  REQUIRE(r.resources(0).resource().UnpackTo(&cla));
  CHECK(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value() == 9101);
  b.Send(Delta(kEds, {}, {}, r.nonce()));
  fanout.join();
  for (int i = 0; i < 100 && s.window.in_use() != 0; ++i) std::this_thread::sleep_for(20ms);
  CHECK(s.window.in_use() == 0);
}

}  // namespace
}  // namespace weft::server
