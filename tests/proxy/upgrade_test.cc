// HTTP/1.1 upgrades in weft-proxy: the codec's upgrade detection (and the
// bytes after the head left to the caller), the headers kept end to end,
// upgrade_configs of HCMs and routes as weft-proxy reads them (enabled
// defaults, Envoy's HCM/route precedence, what is NACKed), the byte
// tunnel with its idle timeout over real sockets, and a real ProxyServer
// passing an upgrade to an app on a fresh connection. What weftd compiles is
// checked in proxy_config_test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/byte_tunnel.h"
#include "proxy/http_codec.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_server.h"
#include "proxy/upgrade_policy.h"

namespace weft::proxy {
namespace {

using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

constexpr char kUpgradeRequest[] =
    "GET /chat HTTP/1.1\r\nHost: b.shop\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

TEST_CASE("codec: upgrade requests are detected and the bytes after the head stay with the caller",
          "[proxy][upgrade]") {
  HttpParser p(HttpParser::Kind::kRequest);
  const std::string wire = std::string(kUpgradeRequest) + "\x81\x05hello";
  auto n = p.Feed(wire);
  REQUIRE(n.ok());
  CHECK(*n == std::string(kUpgradeRequest).size());  // the frame is not HTTP: left unread
  CHECK(p.events().message_complete);
  CHECK(p.head().upgrade);

  auto head_of = [](const std::string& request) {
    HttpParser q(HttpParser::Kind::kRequest);
    auto r = q.Feed(request);
    REQUIRE(r.ok());
    REQUIRE(q.events().head_complete);
    return q.head();
  };
  // Both headers are needed; Connection may list other tokens; any case.
  CHECK(head_of("GET / HTTP/1.1\r\nHost: x\r\nconnection: UPGRADE\r\nupgrade: websocket\r\n\r\n").upgrade);
  CHECK_FALSE(head_of("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").upgrade);
  CHECK_FALSE(head_of("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n").upgrade);
  CHECK_FALSE(head_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n").upgrade);
  // With a body it is an ordinary request (Upgrade then dropped as hop-by-hop).
  CHECK_FALSE(
      head_of(
          "POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nab")
          .upgrade);
  // CONNECT keeps its answer.
  HttpParser c(HttpParser::Kind::kRequest);
  CHECK_FALSE(c.Feed("CONNECT b.shop:443 HTTP/1.1\r\nHost: b.shop:443\r\n\r\n").ok());

  // A 101 taking the upgrade: complete at its head, the server's first bytes left.
  HttpParser r(HttpParser::Kind::kResponse);
  const std::string head101 =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  auto m = r.Feed(head101 + "\x81\x02hi");
  REQUIRE(m.ok());
  CHECK(*m == head101.size());
  CHECK(r.head().status == 101);
  CHECK(r.head().upgrade);
}

TEST_CASE("codec: an upgrade keeps Connection/Upgrade and the Sec-WebSocket headers, drops other hop-by-hop",
          "[proxy][upgrade]") {
  HttpParser p(HttpParser::Kind::kRequest);
  REQUIRE(p.Feed(std::string(kUpgradeRequest)).ok());
  HttpHead head = p.head();
  head.Add("Keep-Alive", "timeout=5");
  StripHopByHopKeepUpgrade(head);
  CHECK(head.Get("connection") == "upgrade");
  CHECK(head.Get("upgrade") == "WebSocket");
  CHECK(head.Get("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK(head.Get("sec-websocket-version") == "13");
  CHECK_FALSE(head.Get("keep-alive"));
  const std::string wire = SerializeRequestHead(head, "/chat", BodyFraming::kNone, 0, true);
  CHECK(wire.find("connection: close") == std::string::npos);
  // The plain path still strips Upgrade (a request whose upgrade is not taken).
  HttpHead plain = p.head();
  StripHopByHop(plain);
  CHECK_FALSE(plain.Get("upgrade"));
  CHECK_FALSE(plain.Get("connection"));
}

HttpConnectionManager HcmWith(std::initializer_list<std::pair<const char*, std::optional<bool>>> types) {
  HttpConnectionManager hcm;
  for (const auto& [type, enabled] : types) {
    auto* c = hcm.add_upgrade_configs();
    c->set_upgrade_type(type);
    if (enabled) c->mutable_enabled()->set_value(*enabled);
  }
  return hcm;
}

TEST_CASE("upgrade_configs: enabled defaults to true, types match in any case, routes override the HCM",
          "[proxy][upgrade]") {
  auto hcm = UpgradePolicy::FromHcm(HcmWith({{"websocket", std::nullopt}, {"h2c", false}}), "hcm");
  REQUIRE(hcm.ok());
  CHECK(hcm->Find("WebSocket") == true);
  CHECK(hcm->Find("h2c") == false);
  CHECK_FALSE(hcm->Find("spdy/3"));
  CHECK(UpgradeAllowed(*hcm, nullptr, "websocket"));
  CHECK(UpgradeAllowed(*hcm, nullptr, "WEBSOCKET"));
  CHECK_FALSE(UpgradeAllowed(*hcm, nullptr, "h2c"));     // listed, enabled: false
  CHECK_FALSE(UpgradeAllowed(*hcm, nullptr, "spdy/3"));  // not listed

  // Envoy's table: the route decides for the types it lists, else the HCM.
  envoy::config::route::v3::RouteAction action;
  auto* off = action.add_upgrade_configs();
  off->set_upgrade_type("WebSocket");
  off->mutable_enabled()->set_value(false);
  action.add_upgrade_configs()->set_upgrade_type("h2c");  // enabled by default
  auto route = UpgradePolicy::FromRoute(action, "route");
  REQUIRE(route.ok());
  CHECK_FALSE(UpgradeAllowed(*hcm, &*route, "websocket"));  // HCM T, route F
  CHECK(UpgradeAllowed(*hcm, &*route, "h2c"));              // HCM F, route T
  CHECK(UpgradeAllowed(*hcm, &*route, "websocket") == false);
  UpgradePolicy empty_route;
  CHECK(UpgradeAllowed(*hcm, &empty_route, "websocket"));  // the route lists nothing
  CHECK(UpgradeAllowed(UpgradePolicy(), &*route, "h2c"));  // not in the HCM, enabled by the route

  // Refused, with their place: custom filter chains, CONNECT, empty and repeated types.
  HttpConnectionManager bad = HcmWith({{"websocket", std::nullopt}, {"WebSocket", true}, {"", std::nullopt}});
  bad.add_upgrade_configs()->set_upgrade_type("CONNECT");
  auto* with_filters = bad.add_upgrade_configs();
  with_filters->set_upgrade_type("foo");
  with_filters->add_filters()->set_name("envoy.filters.http.router");
  auto refused = UpgradePolicy::FromHcm(bad, "Listener outbound: filter_chains[0]");
  REQUIRE_FALSE(refused.ok());
  const std::string msg(refused.status().message());
  CHECK(msg.find("Listener outbound: filter_chains[0].upgrade_configs[1].upgrade_type: \"WebSocket\" is "
                 "listed twice") != std::string::npos);
  CHECK(msg.find("upgrade_configs[2].upgrade_type: required") != std::string::npos);
  CHECK(msg.find("upgrade_configs[3].upgrade_type: CONNECT is not supported") != std::string::npos);
  CHECK(msg.find("upgrade_configs[4].filters: custom upgrade filter chains are not supported") !=
        std::string::npos);
  envoy::config::route::v3::RouteAction connect;
  auto* cc = connect.add_upgrade_configs();
  cc->set_upgrade_type("CONNECT");
  cc->mutable_connect_config();
  auto refused_route = UpgradePolicy::FromRoute(connect, "virtual_hosts[0].routes[0].route");
  REQUIRE_FALSE(refused_route.ok());
  CHECK(std::string(refused_route.status().message()) ==
        "virtual_hosts[0].routes[0].route.upgrade_configs[0].connect_config: CONNECT is not supported by "
        "weft-proxy");
}

// A connected pair of TCP streams on `io` (client side first).
std::pair<ByteStreamPtr, ByteStreamPtr> StreamPair(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  return {std::make_unique<TcpStream>(std::move(client)), std::make_unique<TcpStream>(std::move(server))};
}

// Coroutines take what they use as parameters: a capturing lambda would be
// destroyed before its coroutine runs.
asio::awaitable<void> TunnelInto(ByteStream& down, ByteStream& up, TunnelOptions options,
                                 std::optional<TunnelResult>& result,
                                 std::chrono::steady_clock::time_point& ended) {
  result = co_await RunTunnel(down, up, std::move(options));
  ended = std::chrono::steady_clock::now();
}

asio::awaitable<void> ReadAtLeast(ByteStream& from, size_t size, std::string& out) {
  std::vector<char> buf(64 * 1024);
  std::error_code ec;
  while (out.size() < size) {
    size_t n = co_await from.ReadSome(asio::buffer(buf), ec);
    if (ec || n == 0) co_return;
    out.append(buf.data(), n);
  }
}

asio::awaitable<void> Exchange(ByteStream& app, ByteStream& server, const std::string& big,
                               std::string& from_app, std::string& from_server) {
  std::error_code ec;
  co_await app.Write("hello", ec);
  co_await server.Write(big, ec);
  co_await ReadAtLeast(server, 15, from_app);
  co_await ReadAtLeast(app, 10 + big.size(), from_server);
}

TEST_CASE("byte tunnel: early bytes first, both directions, counted; the idle timeout ends it",
          "[proxy][upgrade]") {
  asio::io_context io;
  // app <-> [down | tunnel | up] <-> server
  auto [app, down] = StreamPair(io);
  auto [up, server] = StreamPair(io);
  common::Counter to_up, to_down;
  TunnelOptions options;
  options.downstream_early = "early-c2s|";
  options.upstream_early = "early-s2c|";
  options.idle_timeout_ms = 400;
  options.downstream_to_upstream_bytes = &to_up;
  options.upstream_to_downstream_bytes = &to_down;
  std::optional<TunnelResult> result;
  std::chrono::steady_clock::time_point ended;
  const std::string big(200 * 1024, 'x');
  std::string from_server, from_app;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(io, TunnelInto(*down, *up, std::move(options), result, ended), asio::detached);
  asio::co_spawn(io, Exchange(*app, *server, big, from_app, from_server), asio::detached);
  io.run_for(std::chrono::seconds(20));
  REQUIRE(result);
  CHECK(from_app == "early-c2s|hello");
  CHECK(from_server == "early-s2c|" + big);
  CHECK(result->downstream_to_upstream == 15u);
  CHECK(result->upstream_to_downstream == 10u + big.size());
  CHECK(to_up.Value() == 15);
  CHECK(to_down.Value() == static_cast<double>(10 + big.size()));
  CHECK(result->idle_timeout);
  CHECK(ended - start >= std::chrono::milliseconds(350));
}

// Reads until the end of stream or an error; `end` says which.
asio::awaitable<void> ReadToEnd(ByteStream& from, std::string& out, std::error_code& end) {
  char buf[4096];
  while (true) {
    size_t n = co_await from.ReadSome(asio::buffer(buf), end);
    if (end || n == 0) co_return;
    out.append(buf, n);
  }
}

struct HalfCloseRun {
  std::optional<TunnelResult>* result = nullptr;
  std::string app_got, server_got, server_rest;
  std::error_code app_end, server_end;
  bool tunnel_open_after_half_close = false;
};

asio::awaitable<void> HalfClose(ByteStream& server, ByteStream& app, HalfCloseRun& run) {
  std::error_code ec;
  co_await server.Write("bye", ec);
  co_await server.ShutdownWrite(ec);  // the server is done sending, not receiving
  co_await ReadToEnd(app, run.app_got, run.app_end);
  co_await app.Write("still here", ec);  // the other direction still flows
  co_await ReadAtLeast(server, 10, run.server_got);
  run.tunnel_open_after_half_close = !run.result->has_value();
  co_await app.ShutdownWrite(ec);  // now both directions have ended
  co_await ReadToEnd(server, run.server_rest, run.server_end);
}

TEST_CASE("byte tunnel: one side's end of stream is passed on, the other direction keeps flowing",
          "[proxy][upgrade]") {
  asio::io_context io;
  auto [app, down] = StreamPair(io);
  auto [up, server] = StreamPair(io);
  std::optional<TunnelResult> result;
  std::chrono::steady_clock::time_point ended;
  HalfCloseRun run;
  run.result = &result;
  asio::co_spawn(io, TunnelInto(*down, *up, TunnelOptions{}, result, ended), asio::detached);
  asio::co_spawn(io, HalfClose(*server, *app, run), asio::detached);
  io.run_for(std::chrono::seconds(20));
  CHECK(run.app_got == "bye");
  CHECK(run.app_end == asio::error::eof);  // a clean end, not a reset
  CHECK(run.server_got == "still here");
  CHECK(run.tunnel_open_after_half_close);
  CHECK(run.server_rest.empty());
  CHECK(run.server_end == asio::error::eof);
  REQUIRE(result);  // both ended: the tunnel is over
  CHECK_FALSE(result->idle_timeout);
  CHECK(result->upstream_to_downstream == 3u);
  CHECK(result->downstream_to_upstream == 10u);
}

asio::awaitable<void> ResetAfter(ByteStream& server, ByteStream& app, std::string& got,
                                 std::error_code& end) {
  std::error_code ec;
  co_await server.Write("bye", ec);
  // An abortive close (RST): an error, not an end of stream.
  server.socket().set_option(asio::socket_base::linger(true, 0), ec);
  server.socket().close(ec);
  co_await ReadToEnd(app, got, end);  // until the tunnel closes app's side
}

TEST_CASE("byte tunnel: a reset on one side closes both", "[proxy][upgrade]") {
  asio::io_context io;
  auto [app, down] = StreamPair(io);
  auto [up, server] = StreamPair(io);
  std::optional<TunnelResult> result;
  std::chrono::steady_clock::time_point ended;
  std::string got;
  std::error_code end;
  asio::co_spawn(io, TunnelInto(*down, *up, TunnelOptions{}, result, ended), asio::detached);
  asio::co_spawn(io, ResetAfter(*server, *app, got, end), asio::detached);
  io.run_for(std::chrono::seconds(20));
  REQUIRE(result);
  CHECK_FALSE(result->idle_timeout);
  CHECK(got == "bye");
  CHECK(result->upstream_to_downstream == 3u);
}

// A loopback listener on a kernel-chosen port; returns (fd, port).
std::pair<int, int> Listen() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const int port = acceptor.local_endpoint().port();
  return {acceptor.release(), port};
}

int FreePort() {
  auto [fd, port] = Listen();
  close(fd);
  return port;
}

int Connect(int port, int recv_timeout_s) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  timeval tv{recv_timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void Send(int fd, std::string_view data) {
  REQUIRE(send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
}

// Reads until `until` has arrived (or the peer closed / timed out).
std::string ReadUntil(int fd, const std::string& until) {
  std::string got;
  char buf[4096];
  while (!absl::StrContains(got, until)) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// An upstream app: plain requests get 200 (keep-alive); an upgrade request
// gets 101 and then its bytes echoed until the peer closes. Counts its
// connections and keeps the upgrade request's head.
class EchoUpgradeApp {
 public:
  EchoUpgradeApp() {
    std::tie(listen_fd_, port_) = Listen();
    thread_ = std::thread([this] {
      for (;;) {
        int fd = accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        std::lock_guard<std::mutex> lock(mu_);
        ++connections_;
        fds_.push_back(fd);
        conns_.emplace_back([this, fd] { Serve(fd); });
      }
    });
  }
  ~EchoUpgradeApp() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : conns_) t.join();
    for (int fd : fds_) close(fd);
  }
  int port() const { return port_; }
  int connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return connections_;
  }
  HttpHead upgrade_head() {
    std::lock_guard<std::mutex> lock(mu_);
    return upgrade_head_;
  }

 private:
  void Serve(int fd) {
    HttpParser parser(HttpParser::Kind::kRequest);
    std::string pending;
    char buf[16384];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      pending.append(buf, static_cast<size_t>(n));
      auto consumed = parser.Feed(pending);
      if (!consumed.ok()) return;
      pending.erase(0, *consumed);
      if (!parser.events().message_complete) continue;
      if (!parser.head().upgrade) {
        const std::string ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if (send(fd, ok.data(), ok.size(), MSG_NOSIGNAL) <= 0) return;
        parser.Reset();
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        upgrade_head_ = parser.head();
      }
      std::string out =
          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
      out += pending;  // echo what came with the head
      for (;;) {
        if (!out.empty() && send(fd, out.data(), out.size(), MSG_NOSIGNAL) <= 0) return;
        ssize_t m = recv(fd, buf, sizeof(buf), 0);
        if (m <= 0) return;
        out.assign(buf, static_cast<size_t>(m));
      }
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  int connections_ = 0;
  HttpHead upgrade_head_;
  std::vector<std::thread> conns_;
  std::vector<int> fds_;
};

// weft-proxy's outbound listener only: an HCM with an empty inline route
// table (everything passes through), websocket enabled and the given
// stream_idle_timeout.
ProxyConfigConstSharedPtr PassThroughConfig(int64_t stream_idle_seconds) {
  HttpConnectionManager hcm;
  hcm.mutable_route_config()->set_name("outbound");
  hcm.add_upgrade_configs()->set_upgrade_type("websocket");
  hcm.mutable_stream_idle_timeout()->set_seconds(stream_idle_seconds);
  envoy::config::listener::v3::Listener l;
  l.set_name("outbound");
  auto* f = l.add_filter_chains()->add_filters();
  f->set_name("envoy.filters.network.http_connection_manager");
  f->mutable_typed_config()->PackFrom(hcm);
  XdsResources r;
  r.by_type[kListenerType]["outbound"].resource.PackFrom(l);
  auto cfg = ProxyConfig::Build(r);
  INFO(cfg.status().message());
  REQUIRE(cfg.ok());
  return *cfg;
}

TEST_CASE(
    "proxy: an upgrade goes on a fresh upstream connection, tunnels, and ends after the stream idle timeout",
    "[proxy][upgrade]") {
  EchoUpgradeApp app;
  common::MetricsRegistry metrics;
  ProxyServer::Options o;
  const int outbound_port = FreePort();
  o.outbound_addr = absl::StrCat("127.0.0.1:", outbound_port);
  o.inbound_addr = absl::StrCat("127.0.0.1:", FreePort());
  o.workers = 1;
  ProxyServer server(o, metrics);
  server.SetConfig(PassThroughConfig(1));
  REQUIRE(server.Start().ok());
  const std::string host = absl::StrCat("127.0.0.1:", app.port());

  // A plain request leaves a pooled keep-alive connection to the app.
  int plain = Connect(outbound_port, 15);
  Send(plain, "GET /a HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  CHECK(absl::StartsWith(ReadUntil(plain, "ok"), "HTTP/1.1 200"));
  CHECK(app.connections() == 1);

  int ws = Connect(outbound_port, 15);
  Send(ws, "GET /chat HTTP/1.1\r\nHost: " + host +
               "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\nearly");
  const std::string head = ReadUntil(ws, "early");
  CHECK(absl::StartsWith(head, "HTTP/1.1 101 Switching Protocols"));
  CHECK(absl::StrContains(head, "\r\n\r\nearly"));  // bytes sent with the request head crossed after the 101
  CHECK(app.connections() == 2);                    // not the pooled one
  const HttpHead seen = app.upgrade_head();
  CHECK(seen.Get("connection") == "upgrade");
  CHECK(seen.Get("upgrade") == "websocket");
  CHECK(seen.Get("sec-websocket-key") == "k");
  Send(ws, "ping");
  CHECK(ReadUntil(ws, "ping") == "ping");
  // Idle: the tunnel ends after the HCM's stream_idle_timeout (1 s), both sides closed.
  const auto t0 = std::chrono::steady_clock::now();
  char c;
  const ssize_t n = recv(ws, &c, 1, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("closed after " << seconds << " s");
  CHECK(n == 0);
  CHECK(seconds >= 0.8);
  CHECK(seconds < 15);
  close(ws);
  // The plain connection is still served.
  Send(plain, "GET /b HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  CHECK(absl::StartsWith(ReadUntil(plain, "ok"), "HTTP/1.1 200"));
  close(plain);
  const std::string stats = metrics.RenderPrometheus();
  CHECK(absl::StrContains(stats, "weft_proxy_upgrades_total{direction=\"outbound\",type=\"websocket\"} 1"));
  CHECK(absl::StrContains(stats, "weft_proxy_upgrades_active{direction=\"outbound\"} 0"));
  server.Stop();
}

}  // namespace
}  // namespace weft::proxy
