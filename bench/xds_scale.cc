// bench/xds_scale: weftd under a mesh-sized load. Generates a file-mode mesh
// of N services (one Workload each), starts the real weftd on it, connects P
// simulated proxies over real gRPC ADS streams from this one process (state
// of the world by default, --delta for incremental, --mixed for half each),
// each subscribing like Envoy does (listeners and clusters by wildcard, then
// every route and endpoint assignment they name). It reports:
//   - weftd's peak RSS (VmHWM) and RSS after the run;
//   - cold sync: from the first stream opening until every proxy holds all
//     four types in full (and has ACKed them);
//   - change->ACK: C endpoint changes (rewriting one Workload's port in its
//     manifest), each timed from the file write until each proxy receives
//     the new endpoint and ACKs it; p50/p90/p99/max over all proxies;
//   - weftd's own weft_xds_convergence_seconds histogram for comparison.
// Not a test: it prints figures. See docs/benchmarks.md for the method.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/hash/hash.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/runtime.h"
#include "common/wire_format.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

ABSL_FLAG(int, services, 1000, "services in the mesh");
ABSL_FLAG(int, proxies, 2000, "simulated proxies (ADS streams)");
ABSL_FLAG(int, changes, 200, "endpoint changes to time");
ABSL_FLAG(int, change_interval_ms, 100, "pause between endpoint changes");
ABSL_FLAG(int, channels, 0,
          "gRPC channels (HTTP/2 connections) the proxies share; 0: one per proxy, as real proxies connect");
ABSL_FLAG(bool, delta, false, "use incremental (delta) ADS");
ABSL_FLAG(bool, mixed, false, "half the proxies SotW, half delta");
ABSL_FLAG(std::string, weftd, "", "path to weftd (default: next to this binary's build tree)");
ABSL_FLAG(int, port, 0, "xDS port for weftd (0: pick one)");
ABSL_FLAG(std::vector<std::string>, weftd_flags, {}, "more flags for weftd, comma-separated (e.g. --push-window=0)");

namespace weft::bench {
namespace {

using Clock = std::chrono::steady_clock;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

const std::string kLds = "type.googleapis.com/envoy.config.listener.v3.Listener";
const std::string kRds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const std::string kCds = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const std::string kEds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

// Endpoint port -> when the change that introduced it was written.
struct ChangeLog {
  std::mutex mu;
  std::map<uint32_t, Clock::time_point> written;
  std::vector<double> latencies_ms;
  void Record(uint32_t port, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = written.find(port);
    if (it != written.end()) {
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
    }
  }
};

struct Progress {
  std::atomic<int> synced{0};
  std::mutex mu;
  std::condition_variable cv;
};

int ServicePortBase() { return 20000; }

// The simulated proxies read only the fields they need (names, nonce,
// version, endpoint ports) with common/wire_format.h, so that the load
// generator stays far cheaper than the server it measures.
class Wire {
 public:
  explicit Wire(std::string_view data) : reader_(data) {}
  bool Next(int* field, std::string_view* bytes, uint64_t* varint) {
    common::WireReader::Field f;
    if (!reader_.Next(f)) return false;
    *field = f.number;
    *bytes = f.bytes;
    *varint = f.varint;
    return true;
  }

 private:
  common::WireReader reader_;
};

std::string_view ValueInAny(std::string_view any) {
  Wire w(any);
  int field;
  std::string_view bytes;
  uint64_t v;
  while (w.Next(&field, &bytes, &v)) {
    if (field == 2) return bytes;
  }
  return {};
}

// The simulated proxies key what they hold by a hash of each name: 2,000
// proxies holding 4,000 names each as strings cost the load generator more
// than the server it measures.
uint64_t NameHash(std::string_view name) { return absl::Hash<std::string_view>()(name); }

// The first length-delimited field `number` of a message, or empty.
std::string_view Field(std::string_view msg, int number) {
  Wire w(msg);
  int field;
  std::string_view bytes;
  uint64_t v;
  while (w.Next(&field, &bytes, &v)) {
    if (field == number) return bytes;
  }
  return {};
}

// ClusterLoadAssignment: cluster_name (1) and the port of its first
// endpoint: endpoints (2) . lb_endpoints (2) . endpoint (1) . address (1)
// . socket_address (1) . port_value (3).
bool ReadEndpoint(std::string_view cla, std::string_view* cluster, uint32_t* port) {
  *cluster = Field(cla, 1);
  std::string_view socket_address =
      Field(Field(Field(Field(Field(cla, 2), 2), 1), 1), 1);
  Wire w(socket_address);
  int field;
  std::string_view bytes;
  uint64_t v;
  while (w.Next(&field, &bytes, &v)) {
    if (field == 3) {
      *port = static_cast<uint32_t>(v);
      return true;
    }
  }
  return false;
}

// A SotW subscription (the names an ACK repeats), encoded once as
// DiscoveryRequest.resource_names (3) and shared by every proxy with the
// same list.
using EncodedNames = std::shared_ptr<const std::string>;
EncodedNames EncodeNames(const std::vector<std::string_view>& sorted_names) {
  static std::mutex mu;
  static std::map<uint64_t, EncodedNames>* cache = new std::map<uint64_t, EncodedNames>();
  std::string bytes;
  for (auto n : sorted_names) common::AppendLengthDelimited(bytes, 3, n);
  const uint64_t key = NameHash(bytes);
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*cache)[key];
  if (!slot || *slot != bytes) slot = std::make_shared<const std::string>(std::move(bytes));
  return slot;
}

std::string Flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!bb.Dump(&slices).ok()) return out;
  out.reserve(bb.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

template <typename Msg>
grpc::ByteBuffer Serialize(const Msg& msg) {
  grpc::ByteBuffer bb;
  bool own;
  grpc::SerializationTraits<Msg>::Serialize(msg, &bb, &own);
  return bb;
}

// One simulated proxy: a bidi ADS stream on gRPC's callback client API,
// over the generic (raw bytes) stub.
class SimProxy : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  SimProxy(int id, bool delta, int services, ChangeLog& changes, Progress& progress)
      : id_(id), delta_(delta), services_(services), changes_(changes), progress_(progress) {}

  void Start(grpc::GenericStub* stub) {
    ctx_.set_wait_for_ready(true);
    stub->PrepareBidiStreamingCall(
        &ctx_,
        delta_ ? "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
               : "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
        grpc::StubOptions(), this);
    StartRead(&response_);
    StartCall();
    if (delta_) {
      DeltaDiscoveryRequest lds;
      lds.mutable_node()->set_id(NodeId());
      lds.mutable_node()->set_user_agent_name("weft-bench");
      lds.set_type_url(kLds);
      lds.add_resource_names_subscribe("*");
      Send(Serialize(lds));
      DeltaDiscoveryRequest cds;
      cds.set_type_url(kCds);
      cds.add_resource_names_subscribe("*");
      Send(Serialize(cds));
    } else {
      DiscoveryRequest lds;
      lds.mutable_node()->set_id(NodeId());
      lds.mutable_node()->set_user_agent_name("weft-bench");
      lds.set_type_url(kLds);
      Send(Serialize(lds));
      DiscoveryRequest cds;
      cds.set_type_url(kCds);
      Send(Serialize(cds));
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::string bytes = Flatten(response_);
    if (delta_) {
      HandleDelta(bytes);
    } else {
      HandleSotw(bytes);
    }
    StartRead(&response_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (ok) WriteNextLocked();
  }
  void OnDone(const grpc::Status& status) override {
    if (!status.ok() && !stopping_) {
      std::fprintf(stderr, "proxy %d: stream ended: %s\n", id_, status.error_message().c_str());
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    done_cv_.notify_all();
  }
  void Stop() {
    stopping_ = true;
    ctx_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return done_; });
  }

 private:
  std::string NodeId() const {
    return absl::StrCat("sidecar~10.", (id_ / 250) % 250, ".", id_ % 250, ".1~sim-", id_,
                        ".default~default.svc.cluster.local");
  }
  void Send(grpc::ByteBuffer bb) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(bb));
    WriteNextLocked();
  }
  void WriteNextLocked() {
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    StartWrite(&current_);
  }
  void MaybeSynced() {
    if (synced_) return;
    if (counts_[kLds] == services_ && counts_[kRds] == services_ && counts_[kCds] == services_ &&
        counts_[kEds] == services_) {
      synced_ = true;
      progress_.synced++;
      progress_.cv.notify_all();
    }
  }
  void NoteEndpoints(std::string_view cla_bytes, Clock::time_point now) {
    std::string_view cluster;
    uint32_t port = 0;
    if (!ReadEndpoint(cla_bytes, &cluster, &port)) return;
    auto& last = endpoint_port_[NameHash(cluster)];
    if (last != 0 && last != port) changes_.Record(port, now);
    last = port;
  }

  // A SotW request: its own fields, then the shared encoding of the names.
  grpc::ByteBuffer SotwRequest(const DiscoveryRequest& fields, const EncodedNames& names) {
    std::string head = fields.SerializeAsString();
    std::vector<grpc::Slice> slices;
    slices.emplace_back(head);
    if (names && !names->empty()) {
      auto* keep = new EncodedNames(names);
      slices.emplace_back(const_cast<char*>(names->data()), names->size(),
                          [](void* p) { delete static_cast<EncodedNames*>(p); }, keep);
    }
    return grpc::ByteBuffer(slices.data(), slices.size());
  }

  void HandleSotw(const std::string& bytes) {
    auto now = Clock::now();
    std::string version, nonce, type;
    std::vector<std::string_view> resources;
    Wire w(bytes);
    int field;
    std::string_view b;
    uint64_t v;
    while (w.Next(&field, &b, &v)) {
      if (field == 1) version = std::string(b);
      if (field == 2) resources.push_back(b);
      if (field == 4) type = std::string(b);
      if (field == 5) nonce = std::string(b);
    }
    DiscoveryRequest ack;
    ack.set_type_url(type);
    ack.set_version_info(version);
    ack.set_response_nonce(nonce);
    EncodedNames ack_names;
    bool names_changed = false;
    if (type == kLds || type == kCds) {
      counts_[type] = static_cast<int>(resources.size());
      std::vector<std::string_view> names;
      names.reserve(resources.size());
      for (auto any : resources) names.push_back(Field(ValueInAny(any), 1));
      std::sort(names.begin(), names.end());
      EncodedNames encoded = EncodeNames(names);
      auto& current = type == kLds ? route_names_ : cluster_names_;
      if (!current || *current != *encoded) {
        current = std::move(encoded);
        names_changed = true;
      }
    } else if (type == kRds) {
      counts_[kRds] = std::max(counts_[kRds], static_cast<int>(resources.size()));
      ack_names = route_names_;
    } else if (type == kEds) {
      counts_[kEds] = std::max(counts_[kEds], static_cast<int>(resources.size()));
      for (auto any : resources) NoteEndpoints(ValueInAny(any), now);
      ack_names = cluster_names_;
    }
    Send(SotwRequest(ack, ack_names));
    if (names_changed) {
      DiscoveryRequest sub;
      sub.set_type_url(type == kLds ? kRds : kEds);
      Send(SotwRequest(sub, type == kLds ? route_names_ : cluster_names_));
    }
    MaybeSynced();
  }

  void HandleDelta(const std::string& bytes) {
    auto now = Clock::now();
    std::string nonce, type;
    std::vector<std::string_view> resources;
    std::vector<std::string> removed;
    Wire w(bytes);
    int field;
    std::string_view b;
    uint64_t v;
    while (w.Next(&field, &b, &v)) {
      if (field == 2) resources.push_back(b);
      if (field == 4) type = std::string(b);
      if (field == 5) nonce = std::string(b);
      if (field == 6) removed.emplace_back(b);
    }
    auto& held = held_[type];
    std::vector<std::string_view> added;
    for (auto res : resources) {
      Wire r(res);
      std::string_view name;
      std::string_view any;
      while (r.Next(&field, &b, &v)) {
        if (field == 3) name = b;
        if (field == 2) any = b;
      }
      if (type == kEds) NoteEndpoints(ValueInAny(any), now);
      if (held.insert(NameHash(name)).second) added.push_back(name);
    }
    for (const auto& name : removed) held.erase(NameHash(name));
    counts_[type] = static_cast<int>(held.size());
    DeltaDiscoveryRequest ack;
    ack.set_type_url(type);
    ack.set_response_nonce(nonce);
    Send(Serialize(ack));
    if (!added.empty() && (type == kLds || type == kCds)) {
      DeltaDiscoveryRequest sub;
      sub.set_type_url(type == kLds ? kRds : kEds);
      for (auto n : added) sub.add_resource_names_subscribe(std::string(n));
      Send(Serialize(sub));
    }
    MaybeSynced();
  }

  const int id_;
  const bool delta_;
  const int services_;
  ChangeLog& changes_;
  Progress& progress_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer response_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<grpc::ByteBuffer> queue_;
  grpc::ByteBuffer current_;
  bool writing_ = false;
  bool done_ = false;
  std::atomic<bool> stopping_{false};
  bool synced_ = false;
  // Read path only (one read at a time):
  std::map<std::string, int> counts_;
  EncodedNames route_names_, cluster_names_;  // SotW: the subscriptions, encoded
  std::map<std::string, absl::flat_hash_set<uint64_t>> held_;  // delta: name hashes per type
  absl::flat_hash_map<uint64_t, uint32_t> endpoint_port_;      // by cluster name hash
};

void WriteWorkload(const std::string& dir, int i, uint32_t port) {
  std::string path = absl::StrCat(dir, "/svc-", i, ".yaml");
  std::string tmp = path + ".tmp";
  std::ofstream out(tmp);
  out << "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" << i << ", namespace: default}\n"
      << "spec:\n  selector: {app: svc-" << i << "}\n  ports:\n  - {name: http, port: 8080}\n---\n"
      << "apiVersion: weft.io/v1alpha1\nkind: Workload\nmetadata: {name: svc-" << i
      << "-0, namespace: default, labels: {app: svc-" << i << "}}\n"
      << "spec: {address: 127.0.0.1, ports: {http: " << port << "}}\n";
  out.close();
  rename(tmp.c_str(), path.c_str());
}

long ReadStatusKb(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key) + 1);
  }
  return -1;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// utime + stime of a child, from /proc/<pid>/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::atof(f.c_str());
  }
  return ticks / sysconf(_SC_CLK_TCK);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

std::string HttpGetMetrics(int port) {
  std::string cmd = absl::StrCat("curl -s http://127.0.0.1:", port, "/metrics");
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

int Run(const char* argv0) {
  const int services = absl::GetFlag(FLAGS_services);
  const int proxies = absl::GetFlag(FLAGS_proxies);
  const int changes = absl::GetFlag(FLAGS_changes);
  std::string weftd = absl::GetFlag(FLAGS_weftd);
  if (weftd.empty()) {
    std::string self(argv0);
    weftd = self.substr(0, self.rfind('/')) + "/../server/weftd";
  }
  char tmpl[] = "/tmp/weft-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string config = dir + "/config";
  mkdir(config.c_str(), 0755);
  for (int i = 0; i < services; ++i) WriteWorkload(config, i, ServicePortBase() + i);

  int xds_port = absl::GetFlag(FLAGS_port) ? absl::GetFlag(FLAGS_port) : FreePort();
  int admin_port = FreePort();
  int tls_port = FreePort();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::string log = dir + "/weftd.log";
    freopen(log.c_str(), "w", stderr);
    std::string a1 = "--config-dir=" + config;
    std::string a2 = absl::StrCat("--xds-plaintext-addr=127.0.0.1:", xds_port);
    std::string a3 = absl::StrCat("--admin-addr=127.0.0.1:", admin_port);
    std::string a4 = "--ca-dir=" + dir + "/ca";
    std::string a5 = absl::StrCat("--xds-addr=127.0.0.1:", tls_port);
    std::vector<std::string> args = {weftd, a1, a2, a3, a4, a5};
    for (const auto& f : absl::GetFlag(FLAGS_weftd_flags)) args.push_back(f);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(weftd.c_str(), argv.data());
    _exit(127);
  }
  // Wait for the xDS port.
  for (int i = 0; i < 200; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(xds_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  long rss_idle = ReadStatusKb(pid, "VmRSS:");

  ChangeLog change_log;
  Progress progress;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  const int channels = absl::GetFlag(FLAGS_channels) > 0 ? absl::GetFlag(FLAGS_channels) : proxies;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", c);  // distinct channels, distinct connections
    args.SetMaxReceiveMessageSize(64 << 20);
    stubs.push_back(std::make_unique<grpc::GenericStub>(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", xds_port), grpc::InsecureChannelCredentials(), args)));
  }
  std::vector<std::unique_ptr<SimProxy>> sims;
  auto start = Clock::now();
  for (int i = 0; i < proxies; ++i) {
    bool use_delta = absl::GetFlag(FLAGS_delta) || (absl::GetFlag(FLAGS_mixed) && i % 2 == 1);
    sims.push_back(std::make_unique<SimProxy>(i, use_delta, services, change_log, progress));
    sims.back()->Start(stubs[i % stubs.size()].get());
  }
  {
    std::unique_lock<std::mutex> lock(progress.mu);
    progress.cv.wait_for(lock, std::chrono::seconds(120), [&] { return progress.synced.load() == proxies; });
  }
  double cold_s = std::chrono::duration<double>(Clock::now() - start).count();
  int synced = progress.synced.load();
  long rss_synced = ReadStatusKb(pid, "VmRSS:");

  // Endpoint changes, spread over the mesh.
  for (int k = 0; k < changes; ++k) {
    int i = (k * 7919) % services;
    uint32_t port = 40000 + k;
    {
      std::lock_guard<std::mutex> lock(change_log.mu);
      change_log.written[port] = Clock::now();
    }
    WriteWorkload(config, i, port);
    std::this_thread::sleep_for(std::chrono::milliseconds(absl::GetFlag(FLAGS_change_interval_ms)));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  long hwm = ReadStatusKb(pid, "VmHWM:");
  long rss_end = ReadStatusKb(pid, "VmRSS:");
  std::string metrics = HttpGetMetrics(admin_port);

  std::vector<double> lat;
  {
    std::lock_guard<std::mutex> lock(change_log.mu);
    lat = change_log.latencies_ms;
  }
  std::printf("xds_scale: %d services, %d proxies (%s), %d channels, %d endpoint changes every %d ms\n",
              services, proxies,
              absl::GetFlag(FLAGS_mixed) ? "mixed SotW/delta" : (absl::GetFlag(FLAGS_delta) ? "delta" : "SotW"),
              channels, changes, absl::GetFlag(FLAGS_change_interval_ms));
  std::printf("  cold sync: %d/%d proxies SYNCED in %.2f s (target <= 5 s)\n", synced, proxies, cold_s);
  std::printf("  weftd RSS: idle %.1f MB, synced %.1f MB, end %.1f MB, peak (VmHWM) %.1f MB (target <= 150 MB)\n",
              rss_idle / 1024.0, rss_synced / 1024.0, rss_end / 1024.0, hwm / 1024.0);
  size_t expected = static_cast<size_t>(changes) * static_cast<size_t>(proxies);
  std::printf("  change->ACK over %zu samples (expected %zu): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 <= 100 ms)\n",
              lat.size(), expected, Percentile(lat, 0.5), Percentile(lat, 0.9), Percentile(lat, 0.99),
              lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end()));
  // The first proxies to hold a change show the fixed part (inotify,
  // debounce, compile) apart from the fan-out to every proxy.
  std::printf("  change->ACK, first proxies: min %.1f ms, p1 %.1f ms, p10 %.1f ms\n",
              lat.empty() ? 0 : *std::min_element(lat.begin(), lat.end()), Percentile(lat, 0.01),
              Percentile(lat, 0.1));
  std::istringstream ms(metrics);
  std::string line;
  while (std::getline(ms, line)) {
    if (line.rfind("weft_xds_convergence_seconds_count", 0) == 0 ||
        line.rfind("weft_xds_convergence_seconds_sum", 0) == 0) {
      std::printf("  weftd %s\n", line.c_str());
    }
  }

  std::printf("  CPU seconds: weftd %.1f, this load generator %.1f (2 cores, shared)\n", CpuSeconds(pid),
              [] {
                struct rusage ru {};
                getrusage(RUSAGE_SELF, &ru);
                return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
              }());
  for (auto& p : sims) p->Stop();
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::printf("  (weftd log: %s/weftd.log)\n", dir.c_str());
  return synced == proxies ? 0 : 1;
}

}  // namespace
}  // namespace weft::bench

int main(int argc, char** argv) {
  weft::common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  // As in weftd: Debian's Abseil checks lock order on every lock otherwise.
  weft::common::DisableMutexDeadlockDetection();
  return weft::bench::Run(argv[0]);
}
