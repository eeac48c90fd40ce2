#include "proxy/proxy_server.h"

#include <charconv>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "proxy/access_log.h"
#include "proxy/buffer_pool.h"
#include "proxy/byte_stream.h"
#include "proxy/byte_tunnel.h"
#include "proxy/cluster_state.h"
#include "proxy/fault_filter.h"
#include "proxy/http_codec.h"
#include "proxy/load_balancer.h"
#include "proxy/request_mirror.h"
#include "proxy/request_stats.h"
#include "proxy/retry_state.h"

namespace weft::proxy {

using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;

absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& addr) {
  auto [host, port] = SplitHostPort(addr);
  if (!port || *port == 0 || host.empty())
    return absl::InvalidArgumentError("\"" + addr + "\" is not HOST:PORT");
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::pair<std::string, uint16_t>{host, static_cast<uint16_t>(*port)};
}

namespace {

constexpr size_t kReadBuffer = 16 * 1024;
constexpr size_t kMaxIdlePerUpstream = 64;
constexpr size_t kMaxIdleBuffers = 64;
// Request bodies up to this size are read whole before the first attempt of
// a route with retries, so that every attempt can send them again.
constexpr size_t kRetryBufferLimit = 64 * 1024;
// A mirrored request (its response is dropped) gets at most this long.
constexpr uint64_t kMirrorTimeoutMs = 10000;
constexpr char kOverflowBody[] =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow\n";

void SetFlag(AccessLogEntry* log, const char* flag) {
  if (log != nullptr) log->response_flags = flag;
}

// Where one request goes upstream.
struct Upstream {
  std::string host;  // IP literal or DNS name
  uint16_t port = 0;
  bool tls = false;
  std::string sni;
  std::vector<std::string> expected_sans;
  uint64_t connect_timeout_ms = 10000;
  std::string cluster;       // for stats and least-request; "" for pass-through
  std::string endpoint_key;  // "ip:port"
  // Mesh clusters: the shared breaker/outlier state and the cluster's
  // entry in the configuration the request holds.
  ClusterState* state = nullptr;
  const ClusterEntry* entry = nullptr;
  size_t hosts = 0;
  uint64_t idle_timeout_ms = 0;  // pool idle timeout; 0: none
  const char* direction = "outbound";
  uint64_t tunnel_idle_timeout_ms = 0;  // an allowed upgrade request: the tunnel's idle timeout (0: none)
  // Built on the stack and appended once: this runs twice per forwarded
  // request (pool lookup and return), and std::string::append is an
  // out-of-line call per piece.
  void AppendPoolKey(std::string& out) const {
    const std::string_view san = expected_sans.size() == 1 ? std::string_view(expected_sans[0]) : "";
    char buf[256];
    char digits[8];
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), port);
    const std::string_view port_text(digits, end - digits);
    const std::string_view pieces[] = {tls ? "tls|" : "tcp|", host, ":", port_text, "|", sni, "|", san};
    size_t n = 0;
    for (std::string_view p : pieces) n += p.size();
    if (n > sizeof(buf)) {
      for (std::string_view p : pieces) out.append(p);
      return;
    }
    char* at = buf;
    for (std::string_view p : pieces) {
      if (p.empty()) continue;  // an empty view's data() may be null
      std::memcpy(at, p.data(), p.size());
      at += p.size();
    }
    out.append(buf, n);
  }
};

// The stats and log name of requests that go to no mesh cluster.
const std::string& PassthroughCluster() {
  static const std::string* const kName = new std::string("PassthroughCluster");
  return *kName;
}

const std::string& EmptyString() {
  static const std::string* const kEmpty = new std::string();
  return *kEmpty;
}

struct ForwardResult {
  int status = 0;  // what the downstream got (0: nothing, connection dropped)
  bool keep_downstream = false;
};

// The worker thread's cached request metrics (each worker thread belongs to
// one ProxyServer).
thread_local RequestStats* t_request_stats = nullptr;

std::string RandomHex(std::mt19937_64& rng) {
  // A version 4 UUID, formatted by hand (snprintf showed in profiles).
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = rng(), b = rng();
  std::string out(36, '-');
  auto put = [&](size_t pos, uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v >>= 4) out[pos + i] = kHex[v & 0xf];
  };
  put(0, a >> 32, 8);
  put(9, (a >> 16) & 0xffff, 4);
  put(14, 0x4000 | (a & 0x0fff), 4);
  put(19, 0x8000 | ((b >> 48) & 0x3fff), 4);
  put(24, b & 0xffffffffffffULL, 12);
  return out;
}

std::string ChunkOf(std::string_view data) {
  std::string out = ChunkHeader(data.size());
  out.append(data.data(), data.size());
  out += "\r\n";
  return out;
}

void ApplyResponseHeaderChanges(const RouteEntry& route, HttpHead& resp) {
  for (const auto& h : route.response_headers_to_remove) resp.Remove(h);
  for (const auto& h : route.response_headers_to_add) {
    if (h.append) {
      resp.Add(h.name, h.value);
    } else {
      resp.Set(h.name, h.value);
    }
  }
}

// A deadline that closes a socket. The state outlives the timer's handler,
// which may already be queued when the deadline is disarmed.
struct Deadline {
  bool fired = false;
  bool disarmed = false;
};
using DeadlinePtr = std::shared_ptr<Deadline>;

// Closes `socket` (a connect in progress) or `stream` when it fires: what
// is waiting on it fails with operation_aborted.
DeadlinePtr Arm(asio::steady_timer& timer, uint64_t ms, tcp::socket* socket, ByteStream* stream = nullptr) {
  auto d = std::make_shared<Deadline>();
  timer.expires_after(std::chrono::milliseconds(ms));
  timer.async_wait([socket, stream, d](std::error_code ec) {
    if (ec || d->disarmed) return;
    d->fired = true;
    if (stream != nullptr) {
      stream->Close();  // also wakes a reader waiting for readiness
      return;
    }
    std::error_code ignored;
    socket->cancel(ignored);
    socket->close(ignored);
  });
  return d;
}

DeadlinePtr Arm(asio::steady_timer& timer, uint64_t ms, ByteStream* stream) {
  return Arm(timer, ms, nullptr, stream);
}

void Disarm(asio::steady_timer& timer, const DeadlinePtr& d) {
  if (!d) return;
  d->disarmed = true;
  timer.cancel();
}

// A downstream connection's idle timeout, which runs while no request is in
// progress. Arming and cancelling a timer for every request showed in
// profiles (an allocation, the timer queue, a cancelled handler to run), so
// the timer is armed once and, when it expires, re-armed for what is left
// of the current idle period, or not at all while a request is in progress.
class IdleTimeout {
 public:
  IdleTimeout(asio::io_context& io, ByteStream* stream) : timer_(io), state_(std::make_shared<State>()) {
    state_->stream = stream;
  }
  ~IdleTimeout() {
    state_->done = true;  // a handler already queued must not touch the socket
    timer_.cancel();
  }
  IdleTimeout(const IdleTimeout&) = delete;
  IdleTimeout& operator=(const IdleTimeout&) = delete;

  // The connection waits for a request for at most `ms` from now.
  void Start(uint64_t ms) {
    State& s = *state_;
    s.idle = true;
    s.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    if (!s.armed || timer_.expiry() > s.deadline) Arm(timer_, state_);
  }
  // A request arrived.
  void Stop() { state_->idle = false; }

 private:
  struct State {
    ByteStream* stream = nullptr;
    bool idle = false;
    bool armed = false;
    bool done = false;
    std::chrono::steady_clock::time_point deadline;
  };
  static void Arm(asio::steady_timer& timer, const std::shared_ptr<State>& state) {
    state->armed = true;
    timer.expires_at(state->deadline);
    timer.async_wait([&timer, state](std::error_code ec) {
      if (ec || state->done) return;
      state->armed = false;
      if (!state->idle) return;  // Start() arms again
      if (std::chrono::steady_clock::now() < state->deadline) {
        Arm(timer, state);
        return;
      }
      state->stream->Close();
    });
  }

  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace

class ProxyServer::Impl {
 public:
  Impl(Options options, common::MetricsRegistry& metrics) : options_(std::move(options)), metrics_(metrics) {}

  struct ClusterLb {
    EndpointPicker picker;
    std::unordered_map<std::string, uint32_t> in_flight;
  };
  struct Worker {
    explicit Worker(common::MetricsRegistry& metrics) : stats(metrics) {
      // Before any stream: the streams' readiness events (ByteStream::Drained).
      asio::make_service<ReadinessLoop>(io);
    }
    BufferPool buffers{kReadBuffer, kMaxIdleBuffers};  // outlives io's coroutines
    // One thread runs it and its sockets are only touched from that thread,
    // so the reactor's per-socket locks are off (posting stays locked: the
    // acceptor hands connections over from another worker).
    asio::io_context io{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::thread thread;
    std::unordered_map<std::string, std::vector<ByteStreamPtr>> idle;
    std::string pool_key;  // IdlePool()'s scratch, reused
    std::unordered_map<std::string, ClusterLb> lb;
    std::unordered_map<std::string, ClusterStateSharedPtr> cluster_state;  // cache of the registry
    std::mt19937_64 rng{std::random_device{}()};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    RequestStats stats;
    // The worker's downstream connections being served (ServeHttp), for
    // Drain() to close those waiting for a request.
    struct Session {
      ByteStream* stream = nullptr;
      bool idle = false;  // waiting for the first byte of a request
    };
    std::unordered_set<Session*> sessions;
  };

  absl::Status Start();
  void Stop();
  bool Drain(std::chrono::milliseconds timeout);
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  ProxyConfigConstSharedPtr config() const {
    absl::MutexLock lock(&mu_);
    return config_;
  }
  TlsContextsConstSharedPtr tls() const {
    absl::MutexLock lock(&mu_);
    return tls_;
  }
  void SetConfig(ProxyConfigConstSharedPtr c) {
    if (c) idle_timeout_ms_.store(c->downstream_idle_timeout_ms(), std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    config_ = std::move(c);
  }
  void SetTls(TlsContextsConstSharedPtr t) {
    absl::MutexLock lock(&mu_);
    tls_ = std::move(t);
  }

 private:
  awaitable<void> Accept(tcp::acceptor& acceptor, bool inbound);
  awaitable<void> OutboundSession(Worker& w, ByteStreamPtr down);
  awaitable<void> InboundSession(Worker& w, tcp::socket socket);
  // `chain` belongs to `pinned` (the configuration it was chosen from).
  awaitable<void> ServeHttp(Worker& w, ByteStream& down, bool inbound, uint32_t port,
                            ProxyConfigConstSharedPtr pinned, const InboundChain* chain);
  // `log` (null without --access-log) collects the request's access-log fields.
  awaitable<ForwardResult> HandleOutbound(Worker& w, ByteStream& down, HttpParser& parser,
                                          std::string& pending, ReadBuffer& rb, AccessLogEntry* log);
  awaitable<ForwardResult> HandleInbound(Worker& w, ByteStream& down, HttpParser& parser,
                                         std::string& pending, ReadBuffer& rb, const InboundChain& chain,
                                         uint32_t port, AccessLogEntry* log);
  // Runs the chain's RBAC and rate-limit filters; a local reply when one stops the request.
  awaitable<std::optional<ForwardResult>> RunInboundFilters(Worker& w, ByteStream& down,
                                                            const HttpParser& parser,
                                                            const InboundChain& chain, uint32_t port);
  // `cfg` non-null: retries may pick another endpoint of up.cluster.
  awaitable<ForwardResult> Forward(Worker& w, ByteStream& down, HttpParser& parser, std::string& pending,
                                   ReadBuffer& rb, HttpHead head, const std::string& target,
                                   Upstream upstream, const RouteEntry* route, const ProxyConfig* cfg,
                                   AccessLogEntry* log);
  // Reads more of the request body and appends it, framed for the upstream,
  // to `out`. 0 when it did; -1 when the downstream went away; 400 on a
  // malformed body.
  awaitable<int> ReadRequestBody(ByteStream& down, HttpParser& parser, std::string& pending, ReadBuffer& rb,
                                 bool chunked, std::string& out);
  bool PickEndpoint(Worker& w, const ProxyConfig& cfg, const ClusterEntry& cluster, Upstream& up);
  // The token bucket under `key` (chain, filter and, per route, the route),
  // kept across updates while the limit keeps its shape.
  TokenBucketSharedPtr Bucket(const std::string& key, const LocalRateLimitConfig& c);
  // `overflow`: no connection because the cluster's circuit breaker is open.
  // `fresh`: a new connection, never a pooled one (upgrades).
  awaitable<ByteStreamPtr> Acquire(Worker& w, const Upstream& u, bool& reused, std::string& error,
                                   bool& overflow, bool fresh = false);
  // A pooled connection to `u`'s destination that is still usable, or null
  // (the pool's stale connections are closed on the way); `pool` (when
  // given) is set to that idle pool, where the connection goes back after
  // the request. Not a coroutine: the common case of a forwarded request
  // allocates no frame for it.
  ByteStreamPtr TakeIdle(Worker& w, const Upstream& u, std::vector<ByteStreamPtr>** pool = nullptr);
  // An upgrade request (`head`, taken from `parser`, has upgrade set):
  // nullopt when `hcm` and the route enable its type (the tunnel's idle
  // timeout is then set on `up`), else Envoy's answer, 403 and the
  // connection closed.
  awaitable<std::optional<ForwardResult>> CheckUpgrade(ByteStream& down, HttpParser& parser,
                                                       const HttpHead& head, Upstream& up,
                                                       const UpgradePolicy* hcm, const RouteEntry* route,
                                                       uint64_t hcm_stream_idle_ms);
  // After a 101 to an upgrade request of `type` (lower case): the 101 goes
  // downstream, then both connections are a byte tunnel until either closes.
  awaitable<ForwardResult> Tunnel(ByteStream& down, ByteStreamPtr conn, const std::string& type,
                                  const HttpParser& response, std::string& pending,
                                  std::string_view up_pending, const RouteEntry* route, const Upstream& up,
                                  AccessLogEntry* log);
  ClusterState& State(Worker& w, const std::string& cluster);
  // The worker's idle connections to `u`'s destination (no allocation once the pool exists).
  std::vector<ByteStreamPtr>& IdlePool(Worker& w, const Upstream& u);
  // Fills the cluster-wide parts of `up` (TLS, breakers, outlier state).
  void SetCluster(Worker& w, const ProxyConfig& cfg, const ClusterEntry& cluster, Upstream& up);
  void CountOverflow(const std::string& cluster, BreakerResource r);
  awaitable<ForwardResult> OverflowReply(ByteStream& down, const HttpParser& parser,
                                         const std::string& cluster, BreakerResource r, AccessLogEntry* log);
  // Outlier detection: one attempt's result on up.endpoint_key.
  void RecordOutlier(Worker& w, const Upstream& up, int status);
  // Request mirroring: fire-and-forget copies of a whole request.
  void StartMirrors(Worker& w, const ProxyConfig& cfg, const RouteEntry& route, const HttpHead& head,
                    const std::string& target, BodyFraming framing, uint64_t length, const std::string& body,
                    bool is_head);
  awaitable<void> Mirror(Worker& w, Upstream up, std::string request, bool is_head);
  awaitable<ForwardResult> LocalReply(ByteStream& down, const HttpParser& parser, int status,
                                      std::string_view body, const HeaderList& extra = {});
  void Record(const std::string& direction, const std::string& cluster, int status,
              std::chrono::steady_clock::time_point start);

  Options options_;
  common::MetricsRegistry& metrics_;
  common::Clock& clock_ = common::RealClock::Get();
  // Before workers_: pooled connections and suspended requests a worker
  // still holds at exit release circuit-breaker slots into these.
  ClusterStateRegistry cluster_states_{clock_};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> outbound_, inbound_;
  tcp::endpoint outbound_endpoint_;
  std::atomic<size_t> next_worker_{0};
  tcp::endpoint app_endpoint_;
  std::string app_host_;  // app_endpoint_'s address as text, for every inbound request

  std::unique_ptr<AccessLog> access_log_;
  std::atomic<uint64_t> idle_timeout_ms_{3600 * 1000};
  // Drain(): set once; every response from then on says "Connection: close".
  std::atomic<bool> draining_{false};
  // Open downstream connections of a listener ("inbound" or "outbound"),
  // all workers: the metric, and what Drain() waits to see at zero.
  common::Gauge& ActiveConnections(const char* listener) {
    return metrics_.GetGauge("weft_proxy_downstream_connections_active", "open downstream connections",
                             {{"listener", listener}});
  }
  // Local rate-limit buckets per inbound chain and filter, shared by the
  // workers; kept across updates that leave the bucket's shape unchanged.
  absl::Mutex buckets_mu_;
  std::unordered_map<std::string, std::pair<std::string, TokenBucketSharedPtr>> buckets_
      ABSL_GUARDED_BY(buckets_mu_);

  mutable absl::Mutex mu_;
  ProxyConfigConstSharedPtr config_ ABSL_GUARDED_BY(mu_);
  TlsContextsConstSharedPtr tls_ ABSL_GUARDED_BY(mu_);
};

absl::Status ProxyServer::Impl::Start() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    auto w = std::make_unique<Worker>(metrics_);
    w->guard.emplace(w->io.get_executor());
    workers_.push_back(std::move(w));
  }
  auto bind = [&](const std::string& flag, const std::string& addr,
                  std::unique_ptr<tcp::acceptor>& out) -> absl::Status {
    auto hp = ParseHostPort(addr);
    if (!hp.ok()) return absl::InvalidArgumentError(flag + ": " + std::string(hp.status().message()));
    std::error_code ec;
    auto ip = asio::ip::make_address(hp->first, ec);
    if (ec) return absl::InvalidArgumentError(flag + ": \"" + hp->first + "\" is not an IP address");
    tcp::endpoint ep(ip, hp->second);
    out = std::make_unique<tcp::acceptor>(workers_[0]->io);
    out->open(ep.protocol(), ec);
    if (!ec) out->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) out->bind(ep, ec);
    if (!ec) out->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return absl::UnavailableError(flag + ": cannot listen on " + addr + ": " + ec.message());
    return absl::OkStatus();
  };
  if (auto s = bind("--outbound-addr", options_.outbound_addr, outbound_); !s.ok()) return s;
  if (auto s = bind("--inbound-addr", options_.inbound_addr, inbound_); !s.ok()) return s;
  outbound_endpoint_ = outbound_->local_endpoint();
  auto app = ParseHostPort(options_.app_addr);
  if (!app.ok()) return absl::InvalidArgumentError("--app-addr: " + std::string(app.status().message()));
  std::error_code ec;
  auto app_ip = asio::ip::make_address(app->first, ec);
  if (ec) return absl::InvalidArgumentError("--app-addr: \"" + app->first + "\" is not an IP address");
  app_endpoint_ = tcp::endpoint(app_ip, app->second);
  app_host_ = app_ip.to_string();
  if (!options_.access_log.empty()) {
    auto log = AccessLog::Open(options_.access_log);
    if (!log.ok()) return log.status();
    access_log_ = std::move(*log);
  }

  asio::co_spawn(workers_[0]->io, Accept(*outbound_, false), asio::detached);
  asio::co_spawn(workers_[0]->io, Accept(*inbound_, true), asio::detached);
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([wp] {
      t_request_stats = &wp->stats;
      wp->io.run();
    });
  }
  return absl::OkStatus();
}

bool ProxyServer::Impl::Drain(std::chrono::milliseconds timeout) {
  if (workers_.empty()) return true;  // never started
  draining_.store(true);
  // Peers stop getting connections (their connect failures are retried
  // elsewhere); the app keeps its outbound listener while it shuts down.
  asio::post(workers_[0]->io, [this] {
    std::error_code ignored;
    if (inbound_) inbound_->close(ignored);
  });
  // Connections waiting for a request close now; one in the middle of a
  // request closes after its response, which says "Connection: close".
  for (auto& w : workers_) {
    asio::post(w->io, [wp = w.get()] {
      std::vector<ByteStream*> idle;
      for (Worker::Session* s : wp->sessions) {
        if (s->idle) idle.push_back(s->stream);
      }
      for (ByteStream* stream : idle) stream->Close();  // the readers resume from the queue
    });
  }
  common::Gauge& inbound = ActiveConnections("inbound");
  common::Gauge& outbound = ActiveConnections("outbound");
  auto none_open = [&] { return inbound.Value() + outbound.Value() <= 0; };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!none_open() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return none_open();
}

void ProxyServer::Impl::Stop() {
  for (auto& w : workers_) {
    w->guard.reset();
    w->io.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void ProxyServer::Impl::Record(const std::string& direction, const std::string& cluster, int status,
                               std::chrono::steady_clock::time_point start) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (t_request_stats != nullptr) {
    t_request_stats->Record(direction, cluster, status, seconds);
  } else {
    RequestStats(metrics_).Record(direction, cluster, status, seconds);  // not on a worker thread
  }
}

awaitable<void> ProxyServer::Impl::Accept(tcp::acceptor& acceptor, bool inbound) {
  const std::string listener = inbound ? "inbound" : "outbound";
  for (;;) {
    std::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      WEFT_LOG(WARNING) << listener << " accept: " << ec.message();
      asio::steady_timer t(acceptor.get_executor());
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    metrics_
        .GetCounter("weft_proxy_downstream_connections_total", "accepted connections",
                    {{"listener", listener}})
        .Inc();
    Worker& w = *workers_[next_worker_++ % workers_.size()];
    // Move the connection to its worker's io_context.
    auto protocol = socket.local_endpoint(ec).protocol();
    int fd = socket.release(ec);
    if (ec) continue;
    asio::post(w.io, [this, &w, fd, protocol, inbound] {
      std::error_code ec2;
      tcp::socket s(w.io);
      s.assign(protocol, fd, ec2);
      if (ec2) return;
      s.set_option(tcp::no_delay(true), ec2);
      if (inbound) {
        asio::co_spawn(w.io, InboundSession(w, std::move(s)), asio::detached);
      } else {
        asio::co_spawn(w.io, OutboundSession(w, std::make_unique<TcpStream>(std::move(s))), asio::detached);
      }
    });
  }
}

awaitable<void> ProxyServer::Impl::OutboundSession(Worker& w, ByteStreamPtr down) {
  auto& active = ActiveConnections("outbound");
  active.Add(1);
  co_await ServeHttp(w, *down, false, 0, nullptr, nullptr);
  down->Close();
  active.Add(-1);
}

awaitable<void> ProxyServer::Impl::InboundSession(Worker& w, tcp::socket socket) {
  auto& active = ActiveConnections("inbound");
  active.Add(1);
  struct Guard {
    common::Gauge& g;
    ~Guard() { g.Add(-1); }
  } guard{active};
  std::error_code ec;
  uint32_t port = socket.local_endpoint(ec).port();
  // TLS or plaintext, from the first byte (a TLS handshake record is 0x16).
  co_await socket.async_wait(tcp::socket::wait_read, redirect_error(use_awaitable, ec));
  unsigned char first = 0;
  size_t n = ec ? 0 : socket.receive(asio::buffer(&first, 1), tcp::socket::message_peek, ec);
  if (ec || n == 0) co_return;
  const bool is_tls = first == 0x16;
  ProxyConfigConstSharedPtr cfg = config();
  const InboundPort* ip = cfg ? cfg->Inbound(port) : nullptr;
  const InboundChain* chain = ip == nullptr ? nullptr
                                            : (is_tls ? (ip->mtls ? &*ip->mtls : nullptr)
                                                      : (ip->plaintext ? &*ip->plaintext : nullptr));
  if (chain == nullptr) {
    // No filter chain takes it: STRICT refuses plaintext; no config yet refuses all.
    metrics_
        .GetCounter("weft_proxy_inbound_refused_total", "inbound connections no filter chain accepted",
                    {{"transport", is_tls ? "tls" : "plaintext"}})
        .Inc();
    WEFT_LOG(DEBUG) << "inbound: refused a " << (is_tls ? "TLS" : "plaintext") << " connection on port "
                    << port;
    socket.close(ec);
    co_return;
  }
  if (!is_tls) {
    TcpStream down(std::move(socket));
    co_await ServeHttp(w, down, true, port, cfg, chain);
    down.Close();
    co_return;
  }
  TlsContextsConstSharedPtr tls = this->tls();
  if (!tls) {
    socket.close(ec);
    co_return;
  }
  TlsStream down(std::move(socket), tls, true);
  std::string error;
  asio::steady_timer timer(w.io);
  DeadlinePtr deadline = Arm(timer, 10000, &down);
  co_await down.Handshake("", {}, ec, error);
  Disarm(timer, deadline);
  if (ec) {
    metrics_
        .GetCounter("weft_proxy_tls_handshake_failures_total", "failed TLS handshakes", {{"side", "inbound"}})
        .Inc();
    WEFT_LOG(INFO) << "inbound: TLS handshake failed on port " << port << ": " << error;
    down.Close();
    co_return;
  }
  co_await ServeHttp(w, down, true, port, cfg, chain);
  down.Close();
}

awaitable<void> ProxyServer::Impl::ServeHttp(Worker& w, ByteStream& down, bool inbound, uint32_t port,
                                             ProxyConfigConstSharedPtr pinned, const InboundChain* chain) {
  HttpParser parser(HttpParser::Kind::kRequest);
  std::string pending;
  // The connection's one read buffer (heads, bodies, the upstream's
  // response): small until a read fills it, and small again between
  // requests, so that a waiting connection holds 2 KB, not a pooled 16 KB.
  ReadBuffer rb(w.buffers);
  // A kept-alive connection follows configuration updates: every request
  // is judged by the chain of the current configuration (a new RBAC or
  // rate-limit policy applies to pooled peer connections at once), and the
  // connection closes when its chain is gone (e.g. STRICT now refuses
  // plaintext). The chain was chosen from `pinned` at accept time; a
  // configuration that arrived during the TLS handshake is picked up here
  // before the first request.
  IdleTimeout idle_timeout(w.io, &down);
  Worker::Session session{&down};
  w.sessions.insert(&session);
  struct Unregister {
    Worker& w;
    Worker::Session* s;
    ~Unregister() { w.sessions.erase(s); }
  } unregister{w, &session};
  for (bool served = false;; served = true) {
    // Draining: a connection that was told to stay open just before closes
    // instead of waiting for another request (Drain() closed the others).
    if (served && draining()) co_return;
    std::error_code ec;
    // The downstream idle timeout runs while no request is in progress.
    const uint64_t idle_ms = idle_timeout_ms_.load(std::memory_order_relaxed);
    if (idle_ms > 0 && !parser.events().head_complete && pending.empty()) idle_timeout.Start(idle_ms);
    session.idle = !parser.events().head_complete && pending.empty();
    while (!parser.events().head_complete) {
      const bool fresh = pending.empty();
      std::string_view input = pending;
      if (fresh) {
        char* at = rb.data();
        size_t n = co_await down.ReadSome(asio::buffer(at, rb.size()), ec);
        if (ec || n == 0) co_return;
        session.idle = false;
        rb.Filled(n);
        input = std::string_view(at, n);  // parsed where it was read
      }
      auto consumed = parser.Feed(input);
      if (!consumed.ok()) {
        metrics_.GetCounter("weft_proxy_malformed_requests_total", "requests answered 400 for bad framing")
            .Inc();
        WEFT_LOG(DEBUG) << consumed.status().message();
        co_await down.Write(SimpleResponse(400, "text/plain", "bad request\n", false), ec);
        co_return;
      }
      // What the parser left (a body, a pipelined request) is kept: the
      // next read reuses `rb`.
      if (fresh) {
        pending.assign(input.substr(*consumed));
      } else {
        pending.erase(0, *consumed);
      }
    }
    idle_timeout.Stop();
    if (inbound) {
      ProxyConfigConstSharedPtr current = config();
      if (current != pinned) {
        pinned = std::move(current);
        const InboundPort* ip = pinned ? pinned->Inbound(port) : nullptr;
        const std::optional<InboundChain>* slot =
            ip == nullptr ? nullptr : (down.tls() ? &ip->mtls : &ip->plaintext);
        if (slot == nullptr || !*slot) co_return;
        chain = &**slot;
      }
    }
    std::optional<AccessLogEntry> entry;  // only with --access-log
    AccessLogEntry* log = nullptr;
    std::chrono::steady_clock::time_point started;
    if (access_log_) {
      log = &entry.emplace();
      started = std::chrono::steady_clock::now();
      log->start = std::chrono::system_clock::now();
      log->direction = inbound ? "inbound" : "outbound";
      log->method = parser.head().method;
      log->path = parser.head().target;
      log->authority = parser.head().Get("host").value_or("");
    }
    ForwardResult r = inbound ? co_await HandleInbound(w, down, parser, pending, rb, *chain, port, log)
                              : co_await HandleOutbound(w, down, parser, pending, rb, log);
    rb.Shrink();
    if (log != nullptr) {
      log->response_code = r.status;
      log->duration_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      access_log_->Write(*log);
    }
    if (!r.keep_downstream) co_return;
    parser.Reset();
  }
}

awaitable<ForwardResult> ProxyServer::Impl::LocalReply(ByteStream& down, const HttpParser& parser, int status,
                                                       std::string_view body, const HeaderList& extra) {
  // The rest of an unread request body would be taken for the next request:
  // close unless the request is complete.
  bool keep = parser.events().message_complete && parser.head().keep_alive && !draining();
  std::error_code ec;
  co_await down.Write(SimpleResponse(status, "text/plain", body, keep, extra), ec);
  co_return ForwardResult{status, keep && !ec};
}

awaitable<ForwardResult> ProxyServer::Impl::HandleOutbound(Worker& w, ByteStream& down, HttpParser& parser,
                                                           std::string& pending, ReadBuffer& rb,
                                                           AccessLogEntry* log) {
  const auto start = std::chrono::steady_clock::now();
  HttpHead head = parser.TakeHead();
  std::string authority;
  std::string target = head.target;
  if (absl::StartsWithIgnoreCase(target, "http://")) {
    std::string rest = target.substr(7);
    size_t slash = rest.find_first_of("/?");
    authority = rest.substr(0, slash);
    target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (target[0] == '?') target = "/" + target;
    if (head.Find("host") == nullptr) head.Set("host", authority);
  } else if (!target.empty() && (target[0] == '/' || target == "*")) {
    if (const std::string* host = head.Find("host")) authority = *host;
  } else {
    ForwardResult r = co_await LocalReply(down, parser, 400, "unsupported request target\n");
    Record("outbound", "", 400, start);
    co_return r;
  }
  if (authority.empty()) {
    ForwardResult r = co_await LocalReply(down, parser, 400, "no Host header\n");
    Record("outbound", "", 400, start);
    co_return r;
  }
  // Request id and W3C trace context: kept when present, generated when not.
  if (head.Find("x-request-id") == nullptr) head.Add("x-request-id", RandomHex(w.rng));
  EnsureTraceparent(head, w.rng, log != nullptr ? &log->trace_id : nullptr);
  if (log != nullptr) {
    log->request_id = head.Get("x-request-id").value_or("");
    TlsContextsConstSharedPtr tls = this->tls();
    if (tls) log->source_identity = tls->own_spiffe_id;
  }
  ProxyConfigConstSharedPtr cfg = config();
  const RouteEntry* route = nullptr;
  const ClusterEntry* cluster = nullptr;
  Upstream up;
  const VirtualHostEntry* vhost = nullptr;
  if (cfg && cfg->outbound_routes()) vhost = cfg->outbound_routes()->FindVirtualHost(authority);
  if (vhost != nullptr) {
    route = RouteTable::FindRoute(*vhost, {authority, head.method, target, &head.headers});
    if (route == nullptr) {
      ForwardResult r = co_await LocalReply(down, parser, 404, "no route\n");
      Record("outbound", "", 404, start);
      co_return r;
    }
    if (route->action == RouteEntry::ActionKind::kDirect) {
      ForwardResult r = co_await LocalReply(down, parser, route->direct_status, route->direct_body);
      Record("outbound", "", route->direct_status, start);
      co_return r;
    }
    if (route->action == RouteEntry::ActionKind::kRedirect) {
      HeaderList location;
      location.emplace_back(std::string("location"), route->RedirectLocation(authority, target));
      ForwardResult r =
          co_await LocalReply(down, parser, route->redirect.status, std::string_view(), location);
      Record("outbound", "", route->redirect.status, start);
      co_return r;
    }
    // The fault filter runs before the router: delay, then abort.
    const FaultConfig* fault = route->fault ? route->fault.get() : cfg->outbound_fault().get();
    if (fault != nullptr && fault->active()) {
      const FaultDecision d = DecideFault(*fault, w.rng(), w.rng());
      if (d.delay_ms > 0) {
        metrics_
            .GetCounter("weft_proxy_faults_injected_total", "requests given an injected fault",
                        {{"kind", "delay"}})
            .Inc();
        SetFlag(log, "DI");
        asio::steady_timer pause(w.io);
        pause.expires_after(std::chrono::milliseconds(d.delay_ms));
        std::error_code ignored;
        co_await pause.async_wait(redirect_error(use_awaitable, ignored));
      }
      if (d.abort_status > 0) {
        metrics_
            .GetCounter("weft_proxy_faults_injected_total", "requests given an injected fault",
                        {{"kind", "abort"}})
            .Inc();
        SetFlag(log, "FI");
        ForwardResult r = co_await LocalReply(down, parser, d.abort_status, "fault filter abort\n");
        Record("outbound", "", d.abort_status, start);
        co_return r;
      }
    }
    const std::string& name = route->PickCluster(w.rng());
    cluster = cfg->FindCluster(name);
    if (cluster == nullptr) {
      ForwardResult r =
          co_await LocalReply(down, parser, route->cluster_not_found_status, "cluster not found\n");
      Record("outbound", name, route->cluster_not_found_status, start);
      co_return r;
    }
    const auto* eps = cfg->Endpoints(cluster->name);
    if (eps == nullptr || eps->empty()) {
      SetFlag(log, "UH");
      ForwardResult r = co_await LocalReply(down, parser, 503, "no healthy upstream\n");
      Record("outbound", cluster->name, 503, start);
      co_return r;
    }
    PickEndpoint(w, *cfg, *cluster, up);
  } else if (cfg && (cluster = cfg->ClusterOfEndpoint(authority)) != nullptr) {
    // A mesh endpoint by its own address: straight there over mTLS, no routes.
    auto hp = ParseHostPort(authority);
    up.host = hp->first;
    up.port = hp->second;
    up.endpoint_key = authority;
  } else {
    if (options_.registry_only) {
      ForwardResult r =
          co_await LocalReply(down, parser, 502, "destination is not in the mesh (REGISTRY_ONLY)\n");
      Record("outbound", "PassthroughCluster", 502, start);
      co_return r;
    }
    auto [host, port] = SplitHostPort(authority);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    up.host = host;
    up.port = static_cast<uint16_t>(port.value_or(80));
    // Only a request to the listener's own port can loop back: the host is
    // parsed as an address for that check only (a new upstream connection
    // parses it itself).
    if (up.port == outbound_endpoint_.port()) {
      std::error_code ec;
      auto addr = asio::ip::make_address(up.host, ec);
      if (!ec && (addr.is_loopback() || addr == outbound_endpoint_.address())) {
        ForwardResult r = co_await LocalReply(down, parser, 502, "request loops back to the proxy\n");
        Record("outbound", "PassthroughCluster", 502, start);
        co_return r;
      }
    }
  }
  if (head.upgrade) {
    auto refused =
        co_await CheckUpgrade(down, parser, head, up, cfg ? &cfg->outbound_upgrades() : nullptr, route,
                              cfg ? cfg->outbound_stream_idle_timeout_ms() : kDefaultStreamIdleTimeoutMs);
    if (refused) {
      Record("outbound", "", refused->status, start);
      co_return *refused;
    }
  }
  // Circuit breaking: the request counts against its cluster until it is done.
  std::optional<BreakerSlot> request_slot;
  if (cluster != nullptr) {
    SetCluster(w, *cfg, *cluster, up);
    request_slot = BreakerSlot::Take(up.state->breaker, BreakerResource::kRequests, cluster->breakers);
    if (!request_slot) {
      ForwardResult r = co_await OverflowReply(down, parser, cluster->name, BreakerResource::kRequests, log);
      Record("outbound", cluster->name, r.status, start);
      co_return r;
    }
    if (log != nullptr && up.expected_sans.size() == 1) log->destination_identity = up.expected_sans[0];
  }
  // Request changes: the route's header changes and rewrites.
  std::string up_target = target;
  if (route != nullptr) {
    for (const auto& h : route->request_headers_to_remove) head.Remove(h);
    for (const auto& h : route->request_headers_to_add) {
      if (h.append) {
        head.Add(h.name, h.value);
      } else {
        head.Set(h.name, h.value);
      }
    }
    up_target = route->RewritePath(target);
    if (!route->host_rewrite.empty()) head.Set("host", route->host_rewrite);
  }
  if (head.Find("x-forwarded-proto") == nullptr) head.Add("x-forwarded-proto", "http");
  // `cluster` belongs to `cfg`, which this frame holds.
  const std::string& stat_cluster = cluster != nullptr ? cluster->name : PassthroughCluster();
  if (log != nullptr) log->upstream_cluster = stat_cluster;
  ForwardResult r = co_await Forward(w, down, parser, pending, rb, std::move(head), up_target, std::move(up),
                                     route, vhost != nullptr ? cfg.get() : nullptr, log);
  Record("outbound", stat_cluster, r.status, start);
  co_return r;
}

bool ProxyServer::Impl::PickEndpoint(Worker& w, const ProxyConfig& cfg, const ClusterEntry& cluster,
                                     Upstream& up) {
  const auto* eps = cfg.Endpoints(cluster.name);
  if (eps == nullptr || eps->empty()) return false;
  ClusterLb& lb = w.lb[cluster.name];
  std::vector<uint32_t> load;
  load.reserve(eps->size());
  // Outlier detection: ejected hosts are skipped (all of them ejected: panic, use all).
  OutlierDetector* outlier = cluster.outlier ? &State(w, cluster.name).outlier : nullptr;
  std::vector<size_t> eligible;
  eligible.reserve(eps->size());
  for (size_t i = 0; i < eps->size(); ++i) {
    std::string key = (*eps)[i].Key();
    if (outlier != nullptr && outlier->IsEjected(key)) continue;
    eligible.push_back(i);
    load.push_back(lb.in_flight[key]);
  }
  if (eligible.empty()) {
    for (size_t i = 0; i < eps->size(); ++i) {
      eligible.push_back(i);
      load.push_back(lb.in_flight[(*eps)[i].Key()]);
    }
  }
  const EndpointAddress& ep = (*eps)[eligible[lb.picker.Pick(cluster.lb, load)]];
  up.host = ep.ip;
  up.port = static_cast<uint16_t>(ep.port);
  up.endpoint_key = ep.Key();
  return true;
}

TokenBucketSharedPtr ProxyServer::Impl::Bucket(const std::string& key, const LocalRateLimitConfig& c) {
  const std::string shape = c.BucketKey();
  absl::MutexLock lock(&buckets_mu_);
  auto& slot = buckets_[key];
  if (!slot.second || slot.first != shape) {
    slot = {shape, std::make_shared<TokenBucket>(c.max_tokens(), c.tokens_per_fill(), c.fill_interval(),
                                                 clock_.Now())};
  }
  return slot.second;
}

awaitable<std::optional<ForwardResult>> ProxyServer::Impl::RunInboundFilters(Worker& w, ByteStream& down,
                                                                             const HttpParser& parser,
                                                                             const InboundChain& chain,
                                                                             uint32_t port) {
  const HttpHead& head = parser.head();
  std::string path = head.target;
  if (absl::StartsWithIgnoreCase(path, "http://") || absl::StartsWithIgnoreCase(path, "https://")) {
    size_t slash = path.find_first_of("/?", path.find("//") + 2);
    path = slash == std::string::npos ? "/" : path.substr(slash);
  }
  const std::string* host_field = head.Find("host");
  const std::string& host = host_field != nullptr ? *host_field : EmptyString();
  const std::string& principal = chain.tls ? down.peer_principal() : EmptyString();
  // The inbound route, for per-route filter configs (per-route rate limits).
  const RouteEntry* route = nullptr;
  if (chain.routes != nullptr) {
    if (const auto* vh = chain.routes->FindVirtualHost(host)) {
      route = RouteTable::FindRoute(*vh, {host, head.method, path, &head.headers});
    }
  }
  for (const InboundHttpFilter& f : chain.filters) {
    if (f.rbac) {
      RbacDecision d = f.rbac->Evaluate({{host, head.method, path, &head.headers}, principal, port});
      if (d.allowed) continue;
      const std::string reason =
          d.policy.empty() ? "no ALLOW policy matched" : "DENY policy " + d.policy + " matched";
      metrics_
          .GetCounter("weft_proxy_rbac_denied_total",
                      "inbound requests denied by RBAC, by matching DENY policy",
                      {{"policy", d.policy.empty() ? "none" : d.policy}})
          .Inc();
      WEFT_LOG(INFO) << "inbound: RBAC denied " << head.method << " " << path << " on port " << port
                     << " from " << (principal.empty() ? std::string("an unauthenticated peer") : principal)
                     << " (" << chain.name << ", " << f.name << ": " << reason << ")";
      co_return co_await LocalReply(down, parser, 403, "RBAC: access denied\n");
    }
    if (f.rate_limit) {
      // A route's own config replaces the filter's, with a bucket per route.
      std::string bucket_key = chain.name + "|" + f.name;
      LocalRateLimitConfigConstSharedPtr config = f.rate_limit;
      if (route != nullptr) {
        if (auto it = route->rate_limits.find(f.name); it != route->rate_limits.end()) {
          config = it->second;
          bucket_key += "|" + route->name;
        }
      }
      const LocalRateLimitConfig& c = *config;
      if (!c.has_bucket()) continue;
      if (c.enabled_percent() == 0 || (c.enabled_percent() < 100 && w.rng() % 100 >= c.enabled_percent()))
        continue;
      TokenBucketSharedPtr bucket = Bucket(bucket_key, c);
      const auto now = clock_.Now();
      if (bucket->TryConsume(now)) continue;
      if (c.enforced_percent() == 0 || (c.enforced_percent() < 100 && w.rng() % 100 >= c.enforced_percent()))
        continue;
      if (config == f.rate_limit) {
        metrics_
            .GetCounter("weft_proxy_ratelimited_total", "inbound requests refused by the local rate limit",
                        {{"chain", chain.name}})
            .Inc();
      } else {
        metrics_
            .GetCounter("weft_proxy_route_ratelimited_total",
                        "inbound requests refused by a per-route local rate limit",
                        {{"chain", chain.name}, {"route", route->name}})
            .Inc();
        WEFT_LOG(INFO) << "inbound: " << head.method << " " << path << " rate limited by route "
                       << route->name << " (" << chain.name << ")";
      }
      HeaderList extra = c.response_headers();
      if (!c.has_retry_after())
        extra.emplace_back("retry-after", std::to_string(bucket->SecondsUntilRefill(now)));
      co_return co_await LocalReply(down, parser, c.status(), "local_rate_limited\n", extra);
    }
  }
  co_return std::nullopt;
}

awaitable<ForwardResult> ProxyServer::Impl::HandleInbound(Worker& w, ByteStream& down, HttpParser& parser,
                                                          std::string& pending, ReadBuffer& rb,
                                                          const InboundChain& chain, uint32_t port,
                                                          AccessLogEntry* log) {
  const auto start = std::chrono::steady_clock::now();
  // `chain` belongs to the configuration ServeHttp holds.
  static const std::string* const kInbound = new std::string("inbound");
  const std::string& cluster = chain.name.empty() ? *kInbound : chain.name;
  if (!chain.unenforced_filters.empty()) {
    // Fail closed: a policy weft-proxy cannot enforce must not be skipped.
    ForwardResult r = co_await LocalReply(down, parser, 403, "policy not enforceable by this proxy\n");
    Record("inbound", cluster, 403, start);
    co_return r;
  }
  if (auto stopped = co_await RunInboundFilters(w, down, parser, chain, port)) {
    Record("inbound", cluster, stopped->status, start);
    co_return *stopped;
  }
  HttpHead head = parser.TakeHead();
  if (head.Find("x-request-id") == nullptr) head.Add("x-request-id", RandomHex(w.rng));
  EnsureTraceparent(head, w.rng, log != nullptr ? &log->trace_id : nullptr);
  if (log != nullptr) {
    log->request_id = head.Get("x-request-id").value_or("");
    log->source_identity = chain.tls ? down.peer_principal() : "";
    TlsContextsConstSharedPtr tls = this->tls();
    if (tls) log->destination_identity = tls->own_spiffe_id;
    log->upstream_cluster = cluster;
  }
  head.Remove("x-forwarded-client-cert");
  if (chain.tls && !down.peer_principal().empty()) {
    TlsContextsConstSharedPtr tls = this->tls();
    head.Add("x-forwarded-client-cert",
             absl::StrCat("By=", tls ? tls->own_spiffe_id : "", ";URI=", down.peer_principal()));
  }
  if (head.Find("x-forwarded-proto") == nullptr) head.Add("x-forwarded-proto", chain.tls ? "https" : "http");
  Upstream up;
  up.host = app_host_;
  up.port = app_endpoint_.port();
  up.connect_timeout_ms = 5000;
  const RouteEntry* route = nullptr;
  if (chain.routes) {
    const std::string* host = head.Find("host");
    const std::string& authority = host != nullptr ? *host : EmptyString();
    if (const auto* vh = chain.routes->FindVirtualHost(authority)) {
      route = RouteTable::FindRoute(*vh, {authority, head.method, head.target, &head.headers});
    }
  }
  up.direction = "inbound";
  if (head.upgrade) {
    auto refused =
        co_await CheckUpgrade(down, parser, head, up, &chain.upgrades, route, chain.stream_idle_timeout_ms);
    if (refused) {
      Record("inbound", cluster, refused->status, start);
      co_return *refused;
    }
  }
  std::string target = head.target;
  ForwardResult r =
      co_await Forward(w, down, parser, pending, rb, std::move(head), target, up, route, nullptr, log);
  Record("inbound", cluster, r.status, start);
  co_return r;
}

ByteStreamPtr ProxyServer::Impl::TakeIdle(Worker& w, const Upstream& u, std::vector<ByteStreamPtr>** pool) {
  auto& idle = IdlePool(w, u);
  if (pool != nullptr) *pool = &idle;  // pools are never erased
  while (!idle.empty()) {
    ByteStreamPtr c = std::move(idle.back());
    idle.pop_back();
    const bool expired = u.idle_timeout_ms > 0 && std::chrono::steady_clock::now() - c->idle_since >
                                                      std::chrono::milliseconds(u.idle_timeout_ms);
    if (!expired && c->IdleAndOpen()) return c;
    c->Close();
  }
  return nullptr;
}

awaitable<ByteStreamPtr> ProxyServer::Impl::Acquire(Worker& w, const Upstream& u, bool& reused,
                                                    std::string& error, bool& overflow, bool fresh) {
  reused = false;
  overflow = false;
  if (!fresh) {
    if (ByteStreamPtr c = TakeIdle(w, u)) {
      reused = true;
      co_return c;
    }
  }
  // A new connection: the request waits for it as a pending request, and
  // the connection counts against the cluster while it lives.
  std::optional<BreakerSlot> pending_slot, connection_slot;
  if (u.state != nullptr) {
    pending_slot = BreakerSlot::Take(u.state->breaker, BreakerResource::kPending, u.entry->breakers);
    if (pending_slot) {
      connection_slot = BreakerSlot::Take(u.state->breaker, BreakerResource::kConnections, u.entry->breakers);
    }
    if (!pending_slot || !connection_slot) {
      overflow = true;
      CountOverflow(u.cluster, pending_slot ? BreakerResource::kConnections : BreakerResource::kPending);
      error = "circuit breaker overflow";
      co_return nullptr;
    }
  }
  auto attach = [&](ByteStream& s) {
    if (connection_slot) s.Attach(std::make_shared<BreakerSlot>(std::move(*connection_slot)));
  };
  std::error_code ec;
  tcp::endpoint ep;
  auto addr = asio::ip::make_address(u.host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, u.port);
  } else {
    tcp::resolver resolver(w.io);
    auto results =
        co_await resolver.async_resolve(u.host, std::to_string(u.port), redirect_error(use_awaitable, ec));
    if (ec || results.empty()) {
      error = "cannot resolve " + u.host + ": " + ec.message();
      co_return nullptr;
    }
    ep = *results.begin();
  }
  tcp::socket socket(w.io);
  asio::steady_timer timer(w.io);
  DeadlinePtr deadline = Arm(timer, u.connect_timeout_ms, &socket);
  co_await socket.async_connect(ep, redirect_error(use_awaitable, ec));
  Disarm(timer, deadline);
  if (ec || deadline->fired) {
    error = absl::StrCat("upstream connect error to ", u.host, ":", u.port, ": ",
                         deadline->fired ? "timeout" : ec.message());
    co_return nullptr;
  }
  socket.set_option(tcp::no_delay(true), ec);
  metrics_
      .GetCounter("weft_proxy_upstream_connections_total", "upstream connections opened",
                  {{"cluster", u.cluster.empty() ? "PassthroughCluster" : u.cluster}})
      .Inc();
  if (!u.tls) {
    auto stream = std::make_unique<TcpStream>(std::move(socket));
    attach(*stream);
    co_return stream;
  }
  TlsContextsConstSharedPtr tls = this->tls();
  if (!tls) {
    error = "no workload certificate yet";
    co_return nullptr;
  }
  auto stream = std::make_unique<TlsStream>(std::move(socket), tls, false);
  deadline = Arm(timer, u.connect_timeout_ms, stream.get());
  std::string why;
  co_await stream->Handshake(u.sni, u.expected_sans, ec, why);
  Disarm(timer, deadline);
  const bool fired = deadline->fired;
  if (ec || fired) {
    metrics_
        .GetCounter("weft_proxy_tls_handshake_failures_total", "failed TLS handshakes",
                    {{"side", "upstream"}})
        .Inc();
    error = absl::StrCat("upstream TLS error with ", u.host, ":", u.port, ": ", fired ? "timeout" : why);
    WEFT_LOG(WARNING) << error;
    stream->Close();
    co_return nullptr;
  }
  attach(*stream);
  co_return stream;
}

awaitable<int> ProxyServer::Impl::ReadRequestBody(ByteStream& down, HttpParser& parser, std::string& pending,
                                                  ReadBuffer& rb, bool chunked, std::string& out) {
  parser.events().body.clear();
  const bool fresh = pending.empty();
  std::string_view input = pending;
  if (fresh) {
    std::error_code ec;
    char* at = rb.data();
    size_t n = co_await down.ReadSome(asio::buffer(at, rb.size()), ec);
    if (ec || n == 0) co_return -1;
    rb.Filled(n);
    input = std::string_view(at, n);  // parsed where it was read, as in ServeHttp
  }
  auto consumed = parser.Feed(input);
  if (!consumed.ok()) co_return 400;
  if (fresh) {
    pending.assign(input.substr(*consumed));
  } else {
    pending.erase(0, *consumed);
  }
  const std::string& body = parser.events().body;
  if (chunked) {
    if (!body.empty()) out += ChunkOf(body);
    if (parser.events().message_complete) out += LastChunk(parser.events().trailers);
  } else {
    out += body;
  }
  parser.events().body.clear();
  co_return 0;
}

awaitable<ForwardResult> ProxyServer::Impl::Forward(Worker& w, ByteStream& down, HttpParser& parser,
                                                    std::string& pending, ReadBuffer& rb, HttpHead head,
                                                    const std::string& target, Upstream up,
                                                    const RouteEntry* route, const ProxyConfig* cfg,
                                                    AccessLogEntry* log) {
  const HttpHead& req = parser.head();
  const bool is_head = req.method == "HEAD";
  const bool downstream_keep = req.keep_alive;
  // An upgrade request (its type allowed by the caller): a dedicated
  // connection, no retries, mirrors or route timeout; its idle timeout bounds the wait for the 101.
  const bool upgrade = req.upgrade;
  // Read now: the head's headers go upstream (parser.head() has none left).
  const std::string upgrade_type = upgrade ? absl::AsciiStrToLower(head.Get("upgrade").value_or("")) : "";
  if (upgrade) {
    StripHopByHopKeepUpgrade(head);
  } else {
    StripHopByHop(head);
  }
  BodyFraming framing =
      req.chunked ? BodyFraming::kChunked : (req.content_length ? BodyFraming::kLength : BodyFraming::kNone);
  const bool chunked = framing == BodyFraming::kChunked;
  const std::string head_bytes =
      SerializeRequestHead(head, target, framing, req.content_length.value_or(0), true);
  std::error_code ec;
  if (req.expect_continue && !parser.events().message_complete) {
    // Answered here, as Envoy does: the body is streamed as it comes.
    co_await down.Write("HTTP/1.1 100 Continue\r\n\r\n", ec);
    if (ec) co_return ForwardResult{};
  }
  auto bad_body = [&]() -> awaitable<ForwardResult> {
    std::error_code ignored;
    co_await down.Write(SimpleResponse(400, "text/plain", "bad request body\n", false), ignored);
    co_return ForwardResult{400, false};
  };

  // The request body read so far, framed for the upstream. With retries, a
  // small body is read whole first so that any attempt can send it again.
  const RetryPolicy* retry = !upgrade && route != nullptr && route->retry ? &*route->retry : nullptr;
  std::string body;
  {
    const std::string& first = parser.events().body;
    if (chunked) {
      if (!first.empty()) body = ChunkOf(first);
      if (parser.events().message_complete) body += LastChunk(parser.events().trailers);
    } else {
      body = first;
    }
    parser.events().body.clear();
  }
  const bool mirrored = !upgrade && cfg != nullptr && route != nullptr && !route->mirrors.empty();
  while (((retry != nullptr && retry->num_retries > 0) || mirrored) && !parser.events().message_complete &&
         body.size() <= kRetryBufferLimit) {
    int r = co_await ReadRequestBody(down, parser, pending, rb, chunked, body);
    if (r < 0) co_return ForwardResult{};
    if (r == 400) co_return co_await bad_body();
  }
  const bool replayable = parser.events().message_complete;
  // Mirrors get a copy of a request whose whole body is in hand.
  if (mirrored && replayable) {
    StartMirrors(w, *cfg, *route, head, target, framing, req.content_length.value_or(0), body, is_head);
  }

  ByteStreamPtr conn;
  std::optional<HttpParser> rp;
  // Response bytes read but not parsed yet: a view into `rb`, which is
  // only read into again once they are all parsed.
  std::string_view up_pending;
  asio::steady_timer timer(w.io);
  DeadlinePtr deadline;
  auto timed_out = [&] { return deadline && deadline->fired; };
  const uint64_t timeout_ms =
      upgrade ? up.tunnel_idle_timeout_ms : (route != nullptr ? route->timeout_ms : 0);
  const uint64_t per_try_ms = retry != nullptr ? retry->per_try_timeout_ms : 0;
  std::optional<std::chrono::steady_clock::time_point> route_deadline;
  const std::string& stat_cluster = up.cluster.empty() ? PassthroughCluster() : up.cluster;
  auto ms_until = [](std::chrono::steady_clock::time_point t) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now()).count();
    return static_cast<uint64_t>(std::max<int64_t>(left, 1));
  };
  // Counts the request against its endpoint for least-request while an attempt runs.
  struct InFlight {
    std::unordered_map<std::string, uint32_t>* counts = nullptr;
    std::string key;
    void Set(std::unordered_map<std::string, uint32_t>* c, std::string k) {
      Clear();
      counts = c;
      key = std::move(k);
      if (counts) ++(*counts)[key];
    }
    void Clear() {
      if (counts) --(*counts)[key];
      counts = nullptr;
    }
    ~InFlight() { Clear(); }
  } in_flight;

  bool free_retry_used = false;
  std::vector<ByteStreamPtr>* pool = nullptr;  // the last attempt's upstream's
  BreakerSlot retry_slot;  // the retry in progress counts against the cluster
  for (uint32_t attempt = 0;;) {
    if (attempt > 0 && cfg != nullptr && !up.cluster.empty()) {
      if (const ClusterEntry* c = cfg->FindCluster(up.cluster)) PickEndpoint(w, *cfg, *c, up);
    }
    in_flight.Set(up.cluster.empty() ? nullptr : &w.lb[up.cluster].in_flight, up.endpoint_key);
    bool reused = false;
    bool got_bytes = false;
    bool per_try_limited = false;
    std::string error;
    AttemptOutcome outcome = AttemptOutcome::kResponse;
    int status = 0;
    rp.emplace(HttpParser::Kind::kResponse);
    rp->SetRequestWasHead(is_head);
    up_pending = {};
    ec.clear();
    if (log != nullptr) log->upstream_host = absl::StrCat(up.host, ":", up.port);
    bool overflow = false;
    conn = upgrade ? nullptr : TakeIdle(w, up, &pool);
    if (conn) {
      reused = true;
    } else {
      conn = co_await Acquire(w, up, reused, error, overflow, /*fresh=*/true);
    }
    if (!conn && overflow)
      co_return co_await OverflowReply(down, parser, up.cluster, BreakerResource::kPending, log);
    if (!conn) {
      outcome = AttemptOutcome::kConnectFailure;
      WEFT_LOG(DEBUG) << error;
    } else {
      co_await conn->Write2(head_bytes, body, ec);
      // The rest of a body too large (or not worth) keeping: streamed.
      std::string piece;
      while (!ec && !parser.events().message_complete) {
        piece.clear();
        int r = co_await ReadRequestBody(down, parser, pending, rb, chunked, piece);
        if (r != 0) {
          conn->Close();
          if (r < 0) co_return ForwardResult{};
          co_return co_await bad_body();
        }
        if (!piece.empty()) co_await conn->Write(piece, ec);
      }
      // The route timeout runs from the end of the request (Envoy's); a
      // per-try timeout bounds each attempt within it.
      if (!route_deadline && timeout_ms > 0) {
        route_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      }
      uint64_t arm_ms = route_deadline ? ms_until(*route_deadline) : 0;
      if (per_try_ms > 0 && (arm_ms == 0 || per_try_ms < arm_ms)) {
        arm_ms = per_try_ms;
        per_try_limited = true;
      }
      if (arm_ms > 0) deadline = Arm(timer, arm_ms, conn.get());
      // The response head (1xx interim responses are dropped: Expect was answered here).
      while (!ec) {
        if (up_pending.empty()) {
          char* at = rb.data();
          size_t n = co_await conn->ReadSome(asio::buffer(at, rb.size()), ec);
          if (ec || n == 0) {
            if (!ec) ec = asio::error::eof;
            break;
          }
          got_bytes = true;
          up_pending = std::string_view(at, n);
          rb.Filled(n);
        }
        auto consumed = rp->Feed(up_pending);
        if (!consumed.ok()) {
          ec = asio::error::invalid_argument;
          break;
        }
        up_pending.remove_prefix(*consumed);
        if (rp->events().head_complete && rp->head().status >= 100 && rp->head().status < 200 &&
            rp->events().message_complete && !(upgrade && rp->head().upgrade)) {
          rp->Reset();
          continue;
        }
        if (rp->events().head_complete) break;
      }
      if (!ec) {
        status = rp->head().status;
        if (per_try_limited) {
          // The head is in: from here only the route timeout bounds the body.
          Disarm(timer, deadline);
          deadline = route_deadline ? Arm(timer, ms_until(*route_deadline), conn.get()) : nullptr;
        }
      } else {
        const bool fired = timed_out();
        Disarm(timer, deadline);
        conn->Close();
        if (fired && !per_try_limited) {
          RecordOutlier(w, up, 0);
          SetFlag(log, "UT");
          // An upgrade waits for its 101 within the stream idle timeout: Envoy's 408.
          if (upgrade) co_return co_await LocalReply(down, parser, 408, "stream timeout\n");
          co_return co_await LocalReply(down, parser, 504, "upstream request timeout\n");
        }
        // A pooled connection the upstream closed meanwhile: once more on a
        // fresh one, not counted as a retry.
        if (!fired && reused && !got_bytes && replayable && !free_retry_used) {
          free_retry_used = true;
          continue;
        }
        outcome = fired ? AttemptOutcome::kPerTryTimeout : AttemptOutcome::kReset;
      }
    }
    RecordOutlier(w, up, outcome == AttemptOutcome::kResponse ? status : 0);
    const bool deadline_left = !route_deadline || std::chrono::steady_clock::now() < *route_deadline;
    bool do_retry = retry != nullptr && attempt < retry->num_retries && deadline_left &&
                    (replayable || outcome == AttemptOutcome::kConnectFailure) &&
                    ShouldRetry(*retry, outcome, status);
    retry_slot.Reset();
    if (do_retry && up.state != nullptr) {
      // max_retries / the retry budget: no retry when the cluster has too many in progress.
      auto slot = BreakerSlot::Take(up.state->breaker, BreakerResource::kRetries, up.entry->breakers);
      if (slot) {
        retry_slot = std::move(*slot);
      } else {
        CountOverflow(up.cluster, BreakerResource::kRetries);
        do_retry = false;
      }
    }
    if (do_retry) {
      if (conn && outcome == AttemptOutcome::kResponse) {
        Disarm(timer, deadline);
        conn->Close();  // the rejected response is not read
      }
      ++attempt;
      metrics_
          .GetCounter("weft_proxy_upstream_retries_total", "outbound request retries",
                      {{"cluster", stat_cluster}})
          .Inc();
      uint64_t backoff = RetryBackoffMs(*retry, attempt, w.rng());
      if (route_deadline) backoff = std::min(backoff, ms_until(*route_deadline));
      if (backoff > 0) {
        asio::steady_timer pause(w.io);
        pause.expires_after(std::chrono::milliseconds(backoff));
        std::error_code ignored;
        co_await pause.async_wait(redirect_error(use_awaitable, ignored));
      }
      continue;
    }
    switch (outcome) {
      case AttemptOutcome::kResponse:
        break;
      case AttemptOutcome::kConnectFailure:
        SetFlag(log, "UF");
        co_return co_await LocalReply(down, parser, 503, "upstream connect error: " + error + "\n");
      case AttemptOutcome::kReset:
        SetFlag(log, "UC");
        co_return co_await LocalReply(down, parser, 503,
                                      "upstream connect error or disconnect/reset before headers\n");
      case AttemptOutcome::kPerTryTimeout:
        SetFlag(log, "UT");
        co_return co_await LocalReply(down, parser, 504, "upstream request timeout\n");
    }
    break;
  }

  if (upgrade && rp->head().upgrade) {
    Disarm(timer, deadline);
    co_return co_await Tunnel(down, std::move(conn), upgrade_type, *rp, pending, up_pending, route, up, log);
  }
  // The response.
  HttpHead resp = rp->TakeHead();
  const int status = resp.status;
  const bool eof_body = rp->eof_delimited();
  if (route != nullptr) ApplyResponseHeaderChanges(*route, resp);
  const bool upstream_keep = resp.keep_alive && !eof_body;
  StripHopByHop(resp);
  BodyFraming rframing = resp.chunked || eof_body ? BodyFraming::kChunked
                         : resp.content_length    ? BodyFraming::kLength
                                                  : BodyFraming::kNone;
  if (status == 204 || (status == 304 && !resp.content_length)) rframing = BodyFraming::kNone;
  bool keep = downstream_keep && !draining();  // draining: the client opens no more requests here
  auto rencode = [&](std::string_view body) {
    if (rframing == BodyFraming::kChunked) return body.empty() ? std::string() : ChunkOf(body);
    return std::string(body);
  };
  std::string first = rencode(rp->events().body);
  if (rp->events().message_complete && rframing == BodyFraming::kChunked && !is_head) {
    first += LastChunk(rp->events().trailers);
  }
  std::error_code dec;
  co_await down.Write2(SerializeResponseHead(resp, rframing, resp.content_length.value_or(0), keep), first,
                       dec);
  bool upstream_ok = true;
  while (!dec && !rp->events().message_complete) {
    rp->events().body.clear();
    if (up_pending.empty()) {
      char* at = rb.data();
      size_t n = co_await conn->ReadSome(asio::buffer(at, rb.size()), ec);
      if (ec || n == 0) {
        if (eof_body && !timed_out() &&
            (ec == asio::error::eof || n == 0 || ec == asio::ssl::error::stream_truncated)) {
          (void)rp->FeedEof();
        }
        if (!rp->events().message_complete) {
          upstream_ok = false;
          break;
        }
      } else {
        up_pending = std::string_view(at, n);
        rb.Filled(n);
      }
    }
    if (!up_pending.empty()) {
      auto consumed = rp->Feed(up_pending);
      if (!consumed.ok()) {
        upstream_ok = false;
        break;
      }
      up_pending.remove_prefix(*consumed);
    }
    std::string piece = rencode(rp->events().body);
    if (rp->events().message_complete && rframing == BodyFraming::kChunked) {
      piece += LastChunk(rp->events().trailers);
    }
    if (!piece.empty()) co_await down.Write(piece, dec);
  }
  Disarm(timer, deadline);
  if (!upstream_ok || dec) {
    // The response was cut short: the downstream cannot be told otherwise.
    conn->Close();
    co_return ForwardResult{status, false};
  }
  if (upstream_keep && up_pending.empty() && !upgrade) {
    auto& idle = pool != nullptr ? *pool : IdlePool(w, up);
    if (idle.size() < kMaxIdlePerUpstream) {
      conn->idle_since = std::chrono::steady_clock::now();
      idle.push_back(std::move(conn));
    } else {
      conn->Close();
    }
  } else {
    conn->Close();
  }
  co_return ForwardResult{status, keep};
}

awaitable<std::optional<ForwardResult>> ProxyServer::Impl::CheckUpgrade(ByteStream& down, HttpParser& parser,
                                                                        const HttpHead& head, Upstream& up,
                                                                        const UpgradePolicy* hcm,
                                                                        const RouteEntry* route,
                                                                        uint64_t hcm_stream_idle_ms) {
  const std::string type = head.Get("upgrade").value_or("");
  if (hcm != nullptr && UpgradeAllowed(*hcm, route != nullptr ? &route->upgrades : nullptr, type)) {
    up.tunnel_idle_timeout_ms =
        route != nullptr && route->idle_timeout_ms ? *route->idle_timeout_ms : hcm_stream_idle_ms;
    co_return std::nullopt;
  }
  metrics_
      .GetCounter("weft_proxy_upgrades_refused_total",
                  "upgrade requests refused (403): type not in upgrade_configs",
                  {{"direction", up.direction}})
      .Inc();
  WEFT_LOG(INFO) << up.direction << ": refused an upgrade to \"" << type << "\" (" << head.method << " "
                 << head.target << "): not enabled by upgrade_configs";
  // Envoy closes the connection too: upgrade payload may hide a smuggled request.
  parser.mutable_head().keep_alive = false;
  co_return co_await LocalReply(down, parser, 403, "");
}

awaitable<ForwardResult> ProxyServer::Impl::Tunnel(ByteStream& down, ByteStreamPtr conn,
                                                   const std::string& type, const HttpParser& response,
                                                   std::string& pending, std::string_view up_pending,
                                                   const RouteEntry* route, const Upstream& up,
                                                   AccessLogEntry* log) {
  HttpHead resp = response.head();
  if (route != nullptr) ApplyResponseHeaderChanges(*route, resp);
  StripHopByHopKeepUpgrade(resp);
  std::error_code ec;
  co_await down.Write(SerializeResponseHead(resp, BodyFraming::kNone, 0, true), ec);
  if (ec) {
    conn->Close();
    co_return ForwardResult{101, false};
  }
  // The type is one the configuration enables, so the label stays bounded.
  const std::string direction = up.direction;
  metrics_
      .GetCounter("weft_proxy_upgrades_total", "upgraded connections (101 Switching Protocols)",
                  {{"direction", direction}, {"type", type}})
      .Inc();
  auto& active = metrics_.GetGauge("weft_proxy_upgrades_active", "upgraded connections open",
                                   {{"direction", direction}});
  TunnelOptions options;
  options.downstream_early = std::move(pending);
  pending.clear();
  options.upstream_early = std::string(up_pending);  // a view into the read buffer
  options.idle_timeout_ms = up.tunnel_idle_timeout_ms;
  const char* kBytesHelp = "bytes through upgraded connections";
  options.downstream_to_upstream_bytes =
      &metrics_.GetCounter("weft_proxy_upgrade_bytes_total", kBytesHelp,
                           {{"direction", direction}, {"flow", "downstream_to_upstream"}});
  options.upstream_to_downstream_bytes =
      &metrics_.GetCounter("weft_proxy_upgrade_bytes_total", kBytesHelp,
                           {{"direction", direction}, {"flow", "upstream_to_downstream"}});
  active.Add(1);
  TunnelResult t = co_await RunTunnel(down, *conn, std::move(options));
  active.Add(-1);
  if (t.idle_timeout) SetFlag(log, "UT");
  WEFT_LOG(DEBUG) << direction << ": " << type << " tunnel to " << up.host << ":" << up.port << " closed ("
                  << t.downstream_to_upstream << " bytes up, " << t.upstream_to_downstream << " down"
                  << (t.idle_timeout ? ", idle timeout" : "") << ")";
  co_return ForwardResult{101, false};
}

std::vector<ByteStreamPtr>& ProxyServer::Impl::IdlePool(Worker& w, const Upstream& u) {
  w.pool_key.clear();
  u.AppendPoolKey(w.pool_key);
  auto it = w.idle.find(w.pool_key);
  if (it == w.idle.end()) it = w.idle.emplace(w.pool_key, std::vector<ByteStreamPtr>{}).first;
  return it->second;
}

ClusterState& ProxyServer::Impl::State(Worker& w, const std::string& cluster) {
  auto& slot = w.cluster_state[cluster];
  if (!slot) slot = cluster_states_.Get(cluster);
  return *slot;
}

void ProxyServer::Impl::SetCluster(Worker& w, const ProxyConfig& cfg, const ClusterEntry& cluster,
                                   Upstream& up) {
  up.cluster = cluster.name;
  up.tls = cluster.tls;
  up.sni = cluster.sni;
  up.expected_sans = cluster.expected_sans;
  up.connect_timeout_ms = cluster.connect_timeout_ms;
  up.idle_timeout_ms = cluster.idle_timeout_ms;
  up.state = &State(w, cluster.name);
  up.entry = &cluster;
  const auto* eps = cfg.Endpoints(cluster.name);
  up.hosts = eps == nullptr ? 0 : eps->size();
}

void ProxyServer::Impl::CountOverflow(const std::string& cluster, BreakerResource r) {
  metrics_
      .GetCounter("weft_proxy_upstream_overflow_total", "requests or retries refused by a circuit breaker",
                  {{"cluster", cluster}, {"kind", BreakerResourceName(r)}})
      .Inc();
}

awaitable<ForwardResult> ProxyServer::Impl::OverflowReply(ByteStream& down, const HttpParser& parser,
                                                          const std::string& cluster, BreakerResource r,
                                                          AccessLogEntry* log) {
  if (r == BreakerResource::kRequests) CountOverflow(cluster, r);  // Acquire counts the others
  SetFlag(log, "UO");
  HeaderList extra;
  extra.emplace_back(std::string("x-envoy-overloaded"), std::string("true"));
  co_return co_await LocalReply(down, parser, 503, kOverflowBody, extra);
}

void ProxyServer::Impl::RecordOutlier(Worker& w, const Upstream& up, int status) {
  if (up.state == nullptr || up.entry == nullptr || !up.entry->outlier || up.endpoint_key.empty()) return;
  if (!up.state->outlier.Record(*up.entry->outlier, up.endpoint_key, status, up.hosts,
                                static_cast<uint32_t>(w.rng() % 100))) {
    return;
  }
  metrics_
      .GetCounter("weft_proxy_outlier_ejections_total", "upstream hosts ejected by outlier detection",
                  {{"cluster", up.cluster}})
      .Inc();
  WEFT_LOG(INFO) << "outlier detection: ejected " << up.endpoint_key << " of " << up.cluster << " (ejection "
                 << up.state->outlier.Ejections(up.endpoint_key) << ", last status "
                 << (status == 0 ? std::string("connect failure/reset/timeout") : std::to_string(status))
                 << ")";
}

void ProxyServer::Impl::StartMirrors(Worker& w, const ProxyConfig& cfg, const RouteEntry& route,
                                     const HttpHead& head, const std::string& target, BodyFraming framing,
                                     uint64_t length, const std::string& body, bool is_head) {
  for (const MirrorPolicy& m : route.mirrors) {
    if (m.per_million < 1000000 && w.rng() % 1000000 >= m.per_million) continue;
    const ClusterEntry* c = cfg.FindCluster(m.cluster);
    Upstream up;
    if (c == nullptr || !PickEndpoint(w, cfg, *c, up)) {
      metrics_
          .GetCounter("weft_proxy_mirror_requests_total", "mirrored requests by mirror cluster and outcome",
                      {{"cluster", m.cluster}, {"result", "no_upstream"}})
          .Inc();
      continue;
    }
    SetCluster(w, cfg, *c, up);
    up.state = nullptr;  // a shadow copy does not count against the mirror cluster's breakers
    up.entry = nullptr;
    HttpHead copy = head;
    copy.Set("host", ShadowHost(copy.Get("host").value_or("")));
    std::string request = SerializeRequestHead(copy, target, framing, length, true);
    request += body;
    asio::co_spawn(w.io, Mirror(w, std::move(up), std::move(request), is_head), asio::detached);
  }
}

awaitable<void> ProxyServer::Impl::Mirror(Worker& w, Upstream up, std::string request, bool is_head) {
  bool reused = false, overflow = false;
  std::string error;
  ByteStreamPtr conn = co_await Acquire(w, up, reused, error, overflow);
  int status = 0;
  if (conn) {
    asio::steady_timer timer(w.io);
    DeadlinePtr deadline = Arm(timer, kMirrorTimeoutMs, conn.get());
    status = co_await SendAndDrain(*conn, request, is_head);
    Disarm(timer, deadline);
    conn->Close();
  }
  metrics_
      .GetCounter("weft_proxy_mirror_requests_total", "mirrored requests by mirror cluster and outcome",
                  {{"cluster", up.cluster},
                   {"result", status == 0 ? std::string("failed") : absl::StrCat(status / 100, "xx")}})
      .Inc();
}

ProxyServer::ProxyServer(Options options, common::MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), metrics)) {}
ProxyServer::~ProxyServer() { Stop(); }
absl::Status ProxyServer::Start() { return impl_->Start(); }
void ProxyServer::Stop() { impl_->Stop(); }
bool ProxyServer::Drain(std::chrono::milliseconds timeout) { return impl_->Drain(timeout); }
bool ProxyServer::draining() const { return impl_->draining(); }
void ProxyServer::SetConfig(ProxyConfigConstSharedPtr config) { impl_->SetConfig(std::move(config)); }
void ProxyServer::SetTls(std::shared_ptr<const TlsContexts> tls) { impl_->SetTls(std::move(tls)); }
ProxyConfigConstSharedPtr ProxyServer::config() const { return impl_->config(); }
std::shared_ptr<const TlsContexts> ProxyServer::tls() const { return impl_->tls(); }

}  // namespace weft::proxy
