// weft-proxy's HTTP/1.1 completeness end to end (issue 7): weftd in file mode
// and two workloads behind real weft-proxy sidecars on their own loopback
// IPs — client (127.0.0.2) and server (127.0.0.3). The server's app is a raw
// socket server in this test, so that it can speak what HTTP libraries
// rarely do: a chunked response with trailer fields. A raw client sends a
// chunked request with trailers through client's outbound listener, across
// mTLS, through server's inbound listener to the app, and asserts that the
// trailers arrive on both sides intact. Then, with echo apps: a sidecar
// renews its certificate at half life (weftd --cert-ttl=1m) while calls keep
// succeeding, and a sidecar on state-of-the-world ADS (--delta=false) routes
// and follows manifest changes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/http_codec.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

using proxy::HttpParser;

int ConnectTo(const std::string& ip, int port) { return ConnectTcp(ip, port, 15); }

// Reads one message from `fd` with the proxy's codec: its head, whole body
// and trailers; false when the peer closed or sent garbage first.
struct Message {
  proxy::HttpHead head;
  std::string body;
  proxy::HeaderList trailers;
};
bool ReadMessage(int fd, HttpParser& parser, Message& out) {
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    std::string_view data(buf, static_cast<size_t>(n));
    auto consumed = parser.Feed(data);
    if (!consumed.ok()) return false;
    out.body += parser.events().body;
    parser.events().body.clear();
    if (parser.events().message_complete) {
      out.head = parser.head();
      out.trailers = parser.events().trailers;
      parser.Reset();
      return true;
    }
  }
}

std::string Trailer(const proxy::HeaderList& trailers, std::string_view name) {
  for (const auto& [k, v] : trailers) {
    if (proxy::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

// The server's app: answers every request with a chunked response whose
// body is the request's body and whose trailers report the request's
// trailers (x-digest) plus a gRPC-style status.
class TrailerApp {
 public:
  TrailerApp(const std::string& ip, int port) {
    listen_fd_ = ListenTcp(ip, port);
    REQUIRE(listen_fd_ >= 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TrailerApp() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);  // sidecars may keep them idle
    for (std::thread& t : conns_) t.join();
    for (int fd : fds_) close(fd);
  }

 private:
  void Serve() {
    while (!stop_) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      fds_.push_back(fd);
      conns_.emplace_back([fd] {
        timeval tv{30, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        HttpParser parser(HttpParser::Kind::kRequest);
        Message req;
        while (ReadMessage(fd, parser, req)) {
          // A response head larger than the sidecars' first read (2 KB) when
          // the request asks for one.
          const std::string pad = req.head.Find("x-pad-response") != nullptr ? std::string(5000, 'r') : "";
          std::string reply =
              "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n"
              "trailer: grpc-status, x-echo-digest\r\n";
          if (!pad.empty()) absl::StrAppend(&reply, "x-pad: ", pad, "\r\n");
          reply += "\r\n";
          // The body in two chunks, so the proxy streams more than one.
          const size_t half = req.body.size() / 2;
          for (std::string_view part :
               {std::string_view(req.body).substr(0, half), std::string_view(req.body).substr(half)}) {
            if (!part.empty())
              absl::StrAppend(&reply, proxy::ChunkHeader(part.size()),
                              absl::string_view(part.data(), part.size()), "\r\n");
          }
          absl::StrAppend(&reply, "0\r\ngrpc-status: 0\r\nx-echo-digest: ", Trailer(req.trailers, "x-digest"),
                          "\r\n\r\n");
          if (!SendAll(fd, reply)) break;
          req = Message{};
        }
      });
    }
  }

  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::vector<int> fds_;  // closed after the connection threads end
};

class TrailerMesh : public SidecarMesh {
 public:
  TrailerMesh() : SidecarMesh("weft-e2e-http-") {
    Apply("mesh.yaml", ServiceManifests({&client, &server}));
    REQUIRE(StartWeftd({&client, &server}).ok());
    REQUIRE(StartWorkload(client, {BinaryPath("echo-server"),
                                   absl::StrCat("--addr=", client.ip, ":", client.app_port), "--name=client"})
                .ok());
    REQUIRE(StartWorkload(server, {}).ok());
  }

  SidecarWorkload client{"client", "shop", "127.0.0.2", "client"};
  SidecarWorkload server{"server", "shop", "127.0.0.3", "server"};
  TrailerApp app{server.ip, server.app_port};
};

TEST_CASE("trailers of chunked requests and responses cross two sidecars intact", "[e2e][proxy][http]") {
  TrailerMesh mesh;
  // Three requests on one keep-alive connection: trailers must not leak
  // into the next message's framing either.
  int fd = -1;
  HttpParser parser(HttpParser::Kind::kResponse);
  REQUIRE(WaitFor(
      [&] {
        if (fd >= 0) close(fd);
        fd = ConnectTo(mesh.client.ip, mesh.client.outbound_port);
        if (fd < 0) return false;
        const std::string probe = "GET /probe HTTP/1.1\r\nHost: server\r\n\r\n";
        Message m;
        parser.Reset();
        return SendAll(fd, probe) && ReadMessage(fd, parser, m) && m.head.status == 200;
      },
      absl::Seconds(20)));

  for (int i = 0; i < 3; ++i) {
    const std::string payload = absl::StrCat("hello-trailers-", i, std::string(3000, 'x'));
    std::string req =
        "POST /upload HTTP/1.1\r\nHost: server\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\n";
    // The third: request and response heads larger than the sidecars' first
    // read (2 KB), so that each head continues in a pooled buffer.
    if (i == 2) absl::StrAppend(&req, "x-pad-response: 1\r\nx-pad: ", std::string(6000, 'q'), "\r\n");
    req += "\r\n";
    absl::StrAppend(&req, proxy::ChunkHeader(payload.size()), payload, "\r\n0\r\nx-digest: sha-256=abc", i,
                    "\r\n\r\n");
    REQUIRE(SendAll(fd, req));
    Message resp;
    REQUIRE(ReadMessage(fd, parser, resp));
    CHECK(resp.head.status == 200);
    CHECK(resp.body == payload);
    INFO("response trailers: " << resp.trailers.size());
    CHECK(Trailer(resp.trailers, "grpc-status") == "0");
    CHECK(Trailer(resp.trailers, "x-echo-digest") == absl::StrCat("sha-256=abc", i));
    if (i == 2) CHECK(resp.head.Get("x-pad").value_or("") == std::string(5000, 'r'));
  }
  close(fd);
}

// The serial number of the certificate a TLS listener presents, as hex; empty
// when no handshake completed. No client certificate is offered: with TLS 1.3
// the server's certificate arrives before it can refuse the client.
std::string ServedSerial(const std::string& ip, int port) {
  int fd = ConnectTo(ip, port);
  if (fd < 0) return "";
  std::string out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
      char* hex = BN_bn2hex(bn);
      out = hex;
      OPENSSL_free(hex);
      BN_free(bn);
      X509_free(cert);
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return out;
}

// client and server with echo apps; `configure` sets flags before start.
class EchoMesh : public SidecarMesh {
 public:
  template <typename Configure>
  explicit EchoMesh(Configure configure) : SidecarMesh("weft-e2e-http-") {
    configure(*this);
    Apply("mesh.yaml", ServiceManifests({&client, &server}));
    REQUIRE(StartWeftd({&client, &server, &late}).ok());
    for (SidecarWorkload* w : {&client, &server}) StartEcho(*w);
  }

  void StartEcho(SidecarWorkload& w) {
    REQUIRE(StartWorkload(w, {BinaryPath("echo-server"), absl::StrCat("--addr=", w.ip, ":", w.app_port),
                              "--name=" + w.name})
                .ok());
  }

  // client's app calls http://host/path through its sidecar.
  int Call(const std::string& host, const std::string& path, std::string* body = nullptr) {
    httplib::Client c(client.ip, client.outbound_port);
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    auto r = c.Get(path, httplib::Headers{{"Host", host}});
    if (!r) return 0;
    if (body != nullptr) *body = r->body;
    return r->status;
  }

  std::string ConfigDump(const SidecarWorkload& w) {
    return HttpGet(w.ip, w.admin_port, "/config_dump").body;
  }

  SidecarWorkload client{"client", "shop", "127.0.0.2", "client"};
  SidecarWorkload server{"server", "shop", "127.0.0.3", "server"};
  SidecarWorkload late{"late", "shop", "127.0.0.4", "late"};
};

TEST_CASE("a sidecar renews its certificate at half life without dropping calls", "[e2e][proxy][cert]") {
  EchoMesh mesh([](EchoMesh& m) { m.weftd_flags = {"--cert-ttl=1m"}; });
  REQUIRE(WaitFor([&] { return mesh.Call("server", "/up") == 200; }, absl::Seconds(20)));
  const std::string first = ServedSerial(mesh.server.ip, mesh.server.inbound_port);
  REQUIRE_FALSE(first.empty());

  // Half of a one-minute lifetime is 30 s; calls flow meanwhile.
  int calls = 0, ok = 0;
  std::string now;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < until) {
    ++calls;
    if (mesh.Call("server", "/during-renewal") == 200) ++ok;
    now = ServedSerial(mesh.server.ip, mesh.server.inbound_port);
    if (!now.empty() && now != first && calls >= 20) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  INFO("served serial before " << first << ", after " << now << "; " << ok << "/" << calls << " calls OK");
  CHECK_FALSE(now.empty());
  CHECK(now != first);
  CHECK(ok == calls);
  // Renewed at half life, not in a loop: a one-minute certificate obtained
  // at most two minutes ago gives a handful of generations, not hundreds.
  const std::string dump = mesh.ConfigDump(mesh.server);
  std::smatch m;
  REQUIRE(std::regex_search(dump, m, std::regex(R"re("generation": (\d+))re")));
  INFO("generation " << m[1]);
  CHECK(std::stoi(m[1]) >= 2);
  CHECK(std::stoi(m[1]) <= 8);
  CHECK(mesh.Call("server", "/after-renewal") == 200);
}

TEST_CASE("a sidecar on state-of-the-world ADS routes and follows changes", "[e2e][proxy][xds]") {
  EchoMesh mesh([](EchoMesh& m) { m.client.proxy_flags = {"--delta=false"}; });
  REQUIRE(WaitFor([&] { return mesh.Call("server", "/up") == 200; }, absl::Seconds(20)));
  CHECK(absl::StrContains(mesh.ConfigDump(mesh.client), "\"protocol\": \"sotw\""));
  CHECK(absl::StrContains(mesh.ConfigDump(mesh.server), "\"protocol\": \"delta\""));

  // A new Service and Workload appear in the manifests: the SotW client
  // learns its route, cluster and endpoint without a restart.
  CHECK(mesh.Call("late", "/before") != 200);
  mesh.StartEcho(mesh.late);
  mesh.Apply("late.yaml", SidecarMesh::ServiceManifests({&mesh.late}));
  std::string body;
  REQUIRE(WaitFor([&] { return mesh.Call("late", "/hello", &body) == 200; }, absl::Seconds(30)));
  CHECK(absl::StrContains(body, "\"late\""));
  CHECK(absl::StrContains(mesh.ConfigDump(mesh.client), "\"protocol\": \"sotw\""));
}

}  // namespace
}  // namespace weft::e2e
