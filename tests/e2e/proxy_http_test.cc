// weft-proxy's HTTP/1.1 completeness end to end (issue 7): weftd in file mode
// and two workloads behind real weft-proxy sidecars on their own loopback
// IPs — client (127.0.0.2) and server (127.0.0.3). The server's app is a raw
// socket server in this test, so that it can speak what HTTP libraries
// rarely do: a chunked response with trailer fields. A raw client sends a
// chunked request with trailers through client's outbound listener, across
// mTLS, through server's inbound listener to the app, and asserts that the
// trailers arrive on both sides intact.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/http_codec.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

using proxy::HttpParser;

int ConnectTo(const std::string& ip, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  timeval tv{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

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
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(listen_fd_, 16) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TrailerApp() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
    for (std::thread& t : conns_) t.join();
  }

 private:
  void Serve() {
    while (!stop_) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      conns_.emplace_back([fd] {
        timeval tv{30, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        HttpParser parser(HttpParser::Kind::kRequest);
        Message req;
        while (ReadMessage(fd, parser, req)) {
          std::string reply =
              "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n"
              "trailer: grpc-status, x-echo-digest\r\n\r\n";
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
        close(fd);
      });
    }
  }

  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conns_;
};

class Mesh : public SidecarMesh {
 public:
  Mesh() : SidecarMesh("weft-e2e-http-") {
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
  Mesh mesh;
  // Two requests on one keep-alive connection: trailers must not leak into
  // the next message's framing either.
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

  for (int i = 0; i < 2; ++i) {
    const std::string payload = absl::StrCat("hello-trailers-", i, std::string(3000, 'x'));
    std::string req =
        "POST /upload HTTP/1.1\r\nHost: server\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\n\r\n";
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
  }
  close(fd);
}

}  // namespace
}  // namespace weft::e2e
