// WebSocket through the sidecar pair end to end: weftd in file mode (STRICT
// mTLS) and two workloads behind real weft-proxy sidecars on their own
// loopback IPs — a (127.0.0.2, echo app, --access-log) and b (127.0.0.3,
// whose app is a small WebSocket server in this test: the RFC 6455
// handshake with Sec-WebSocket-Accept = base64(SHA-1(key + GUID)), a
// greeting frame, then every frame echoed). A raw client speaks WebSocket
// through a's outbound listener to service b: the 101 arrives with the right
// accept value, messages cross both ways (one of 200 KiB, beyond 64 KiB and
// the 16 KiB read buffers), the app saw a's SPIFFE ID in
// x-forwarded-client-cert, and a close frame ends the tunnel. Then: a plain
// request through a still works; an app refusing the upgrade (426) is
// relayed as an ordinary response on a connection that stays usable; an
// upgrade type the sidecars do not enable gets Envoy's 403 and the
// connection closed; the tunnels are counted and access-logged with 101.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
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

int ConnectTo(const std::string& ip, int port) { return ConnectTcp(ip, port, 20); }

// A byte stream over a socket: what the HTTP head left over is read first.
struct Conn {
  int fd = -1;
  std::string buffered;

  bool Fill() {
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffered.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool ReadExact(size_t n, std::string& out) {
    while (buffered.size() < n) {
      if (!Fill()) return false;
    }
    out = buffered.substr(0, n);
    buffered.erase(0, n);
    return true;
  }
  // One HTTP message head (and its body, when framed) with the proxy's codec.
  bool ReadMessage(HttpParser::Kind kind, proxy::HttpHead& head, std::string& body) {
    HttpParser parser(kind);
    body.clear();
    for (;;) {
      if (buffered.empty() && !Fill()) return false;
      auto consumed = parser.Feed(buffered);
      if (!consumed.ok()) return false;
      buffered.erase(0, *consumed);
      body += parser.events().body;
      parser.events().body.clear();
      if (parser.events().message_complete) {
        head = parser.head();
        return true;
      }
    }
  }
  // True when the peer closed the connection (and sent nothing more).
  bool ClosedByPeer() {
    char c;
    return buffered.empty() && recv(fd, &c, 1, 0) == 0;
  }
};

// RFC 6455 §4.2.2: the server's proof that it read the key.
std::string WebSocketAccept(const std::string& key) {
  const std::string input = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

// One frame (FIN set); clients mask their frames, servers do not (§5.3).
std::string Frame(uint8_t opcode, std::string_view payload, bool mask) {
  std::string out;
  out += static_cast<char>(0x80 | opcode);
  const uint8_t mask_bit = mask ? 0x80 : 0;
  if (payload.size() < 126) {
    out += static_cast<char>(mask_bit | payload.size());
  } else if (payload.size() <= 0xffff) {
    out += static_cast<char>(mask_bit | 126);
    for (int shift : {8, 0}) out += static_cast<char>((payload.size() >> shift) & 0xff);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((uint64_t{payload.size()} >> shift) & 0xff);
  }
  unsigned char key[4] = {0, 0, 0, 0};
  if (mask) {
    RAND_bytes(key, 4);
    out.append(reinterpret_cast<char*>(key), 4);
  }
  for (size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ key[i % 4]);
  return out;
}

struct WsMessage {
  uint8_t opcode = 0;
  std::string payload;
};

// Reads one frame, unmasking it when masked.
bool ReadFrame(Conn& c, WsMessage& out) {
  std::string h;
  if (!c.ReadExact(2, h)) return false;
  out.opcode = static_cast<uint8_t>(h[0]) & 0x0f;
  const bool masked = (static_cast<uint8_t>(h[1]) & 0x80) != 0;
  uint64_t len = static_cast<uint8_t>(h[1]) & 0x7f;
  if (len >= 126) {
    std::string ext;
    if (!c.ReadExact(len == 126 ? 2 : 8, ext)) return false;
    len = 0;
    for (char b : ext) len = (len << 8) | static_cast<uint8_t>(b);
  }
  std::string key;
  if (masked && !c.ReadExact(4, key)) return false;
  if (!c.ReadExact(len, out.payload)) return false;
  if (masked) {
    for (size_t i = 0; i < out.payload.size(); ++i) out.payload[i] ^= key[i % 4];
  }
  return true;
}

// b's app. An upgrade request for websocket to /chat gets 101 with the
// accept value, a "welcome" text frame, then each frame echoed (a close
// frame is echoed and the connection closed). An upgrade request elsewhere
// is refused with 426; any other request gets 200 "plain" (keep-alive).
class WebSocketApp {
 public:
  WebSocketApp(const std::string& ip, int port) {
    listen_fd_ = ListenTcp(ip, port);
    REQUIRE(listen_fd_ >= 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~WebSocketApp() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);  // sidecars may keep them idle
    }
    for (std::thread& t : conns_) t.join();
    for (int fd : fds_) close(fd);
  }

  // The x-forwarded-client-cert of each upgrade request that reached the app.
  std::vector<std::string> UpgradeXfcc() {
    std::lock_guard<std::mutex> lock(mu_);
    return upgrade_xfcc_;
  }
  int upgrades_seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(upgrade_xfcc_.size());
  }

 private:
  void Serve() {
    for (;;) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      conns_.emplace_back([this, fd] { Handle(fd); });
    }
  }

  void Handle(int fd) {
    timeval tv{60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    Conn c{fd, ""};
    proxy::HttpHead req;
    std::string body;
    while (c.ReadMessage(HttpParser::Kind::kRequest, req, body)) {
      const bool upgrade =
          req.upgrade && proxy::EqualsIgnoreCase(req.Get("upgrade").value_or(""), "websocket");
      if (upgrade) {
        std::lock_guard<std::mutex> lock(mu_);
        upgrade_xfcc_.push_back(req.Get("x-forwarded-client-cert").value_or(""));
      }
      if (upgrade && req.target == "/chat") {
        const std::string reply = absl::StrCat(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: ",
            WebSocketAccept(req.Get("sec-websocket-key").value_or("")), "\r\n\r\n");
        // The greeting goes out with the 101: the proxy must pass what follows the head.
        if (!SendAll(fd, reply + Frame(0x1, "welcome", false))) return;
        WsMessage m;
        while (ReadFrame(c, m)) {
          if (!SendAll(fd, Frame(m.opcode, m.payload, false))) return;
          if (m.opcode == 0x8) break;
        }
        shutdown(fd, SHUT_RDWR);
        return;
      }
      const std::string reply = upgrade
                                    ? "HTTP/1.1 426 Upgrade Required\r\ncontent-length: 8\r\n\r\nrefused\n"
                                    : "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nplain\n";
      if (!SendAll(fd, reply)) return;
    }
  }

  int listen_fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<int> fds_;  // closed after the connection threads end
  std::vector<std::string> upgrade_xfcc_;
};

std::string RandomKey() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof(raw));
  unsigned char b64[25];
  int n = EVP_EncodeBlock(b64, raw, sizeof(raw));
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

std::string UpgradeRequest(const std::string& path, const std::string& type, const std::string& key) {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: ", type,
                      "\r\nSec-WebSocket-Key: ", key, "\r\nSec-WebSocket-Version: 13\r\n\r\n");
}

// The value of the sample `series` (name and labels) in a Prometheus page; -1 when absent.
double MetricValue(const std::string& page, const std::string& series) {
  size_t at = page.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + series.size() + 1));
}

class UpgradeMesh : public SidecarMesh {
 public:
  UpgradeMesh() : SidecarMesh("weft-e2e-upgrade-") {
    a.proxy_flags = {"--access-log=" + access_log};
    Apply("mesh.yaml", ServiceManifests({&a, &b}));
    Apply("mtls.yaml",
          "apiVersion: weft.io/v1alpha1\nkind: MTLSPolicy\nmetadata: {name: default, namespace: shop}\n"
          "spec: {mode: STRICT}\n");
    REQUIRE(StartWeftd({&a, &b}).ok());
    REQUIRE(StartEcho(a).ok());
    REQUIRE(StartWorkload(b, {}).ok());
  }

  std::string Stats(const SidecarWorkload& w) {
    return HttpGet(w.ip, w.admin_port, "/stats/prometheus").body;
  }

  SidecarWorkload a{"a", "shop", "127.0.0.2", "a"};
  SidecarWorkload b{"b", "shop", "127.0.0.3", "b"};
  std::string access_log = dir + "/a-access.log";
  WebSocketApp app{b.ip, b.app_port};
};

TEST_CASE("WebSocket through two sidecars over STRICT mTLS", "[e2e][proxy][upgrade]") {
  UpgradeMesh mesh;
  // A plain request through a reaches b's app (configuration in place).
  Conn plain{-1, ""};
  auto plain_get = [&](Conn& c) {
    proxy::HttpHead head;
    std::string body;
    return SendAll(c.fd, "GET /plain HTTP/1.1\r\nHost: b\r\n\r\n") &&
           c.ReadMessage(HttpParser::Kind::kResponse, head, body) && head.status == 200 && body == "plain\n";
  };
  REQUIRE(WaitFor(
      [&] {
        if (plain.fd >= 0) close(plain.fd);
        plain = Conn{ConnectTo(mesh.a.ip, mesh.a.outbound_port), ""};
        return plain.fd >= 0 && plain_get(plain);
      },
      absl::Seconds(20)));
  // STRICT: b's inbound refuses plaintext, so everything below went over mTLS.
  REQUIRE(
      WaitFor([&] { return HttpGet(mesh.b.ip, mesh.b.inbound_port, "/plain", absl::Seconds(2)).status == 0; },
              absl::Seconds(15)));

  // The handshake through a's outbound listener to service b.
  Conn ws{ConnectTo(mesh.a.ip, mesh.a.outbound_port), ""};
  REQUIRE(ws.fd >= 0);
  const std::string key = RandomKey();
  REQUIRE(SendAll(ws.fd, UpgradeRequest("/chat", "websocket", key)));
  proxy::HttpHead head;
  std::string body;
  REQUIRE(ws.ReadMessage(HttpParser::Kind::kResponse, head, body));
  REQUIRE(head.status == 101);
  CHECK(head.upgrade);
  CHECK(head.Get("sec-websocket-accept") == WebSocketAccept(key));
  CHECK(proxy::EqualsIgnoreCase(head.Get("upgrade").value_or(""), "websocket"));

  // Server first, then messages both ways: small, 16-bit and 64-bit lengths.
  WsMessage m;
  REQUIRE(ReadFrame(ws, m));
  CHECK(m.opcode == 0x1);
  CHECK(m.payload == "welcome");
  std::string large(200 * 1024, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('a' + i % 26);
  const std::vector<std::string> messages = {
      "hello", std::string(125, 'x'), std::string(126, 'y'), std::string(5000, 'z'), large, "bye"};
  for (const std::string& payload : messages) {
    REQUIRE(SendAll(ws.fd, Frame(payload.size() > 1000 ? 0x2 : 0x1, payload, true)));
    REQUIRE(ReadFrame(ws, m));
    CHECK(m.payload.size() == payload.size());
    CHECK(m.payload == payload);
  }
  // Several frames written at once come back in order.
  REQUIRE(SendAll(ws.fd, Frame(0x1, "one", true) + Frame(0x1, "two", true) + Frame(0x9, "ping", true)));
  for (const char* expected : {"one", "two", "ping"}) {
    REQUIRE(ReadFrame(ws, m));
    CHECK(m.payload == expected);
  }
  // b's app saw a's SPIFFE ID on the upgrade request, set by b's sidecar.
  const std::vector<std::string> xfcc = mesh.app.UpgradeXfcc();
  REQUIRE(xfcc.size() == 1);
  CHECK(xfcc[0] == "By=spiffe://cluster.local/ns/shop/sa/b;URI=spiffe://cluster.local/ns/shop/sa/a");
  // A close frame is echoed, then the app closes and the tunnel with it.
  REQUIRE(SendAll(ws.fd, Frame(0x8, std::string("\x03\xe8", 2), true)));
  REQUIRE(ReadFrame(ws, m));
  CHECK(m.opcode == 0x8);
  CHECK(ws.ClosedByPeer());
  close(ws.fd);

  // The client's sidecar still serves plain requests, on a kept-alive connection and a new one.
  CHECK(plain_get(plain));
  Conn fresh{ConnectTo(mesh.a.ip, mesh.a.outbound_port), ""};
  CHECK(plain_get(fresh));
  close(fresh.fd);

  // An app refusing the upgrade: its 426 comes back as an ordinary
  // response and the connection stays usable.
  Conn refused{ConnectTo(mesh.a.ip, mesh.a.outbound_port), ""};
  REQUIRE(refused.fd >= 0);
  REQUIRE(SendAll(refused.fd, UpgradeRequest("/elsewhere", "websocket", RandomKey())));
  REQUIRE(refused.ReadMessage(HttpParser::Kind::kResponse, head, body));
  CHECK(head.status == 426);
  CHECK(body == "refused\n");
  CHECK(plain_get(refused));
  close(refused.fd);

  // A type the sidecars do not enable: Envoy's 403, connection closed; the app never sees it.
  const int upgrades_before = mesh.app.upgrades_seen();
  Conn h2c{ConnectTo(mesh.a.ip, mesh.a.outbound_port), ""};
  REQUIRE(h2c.fd >= 0);
  REQUIRE(SendAll(h2c.fd, UpgradeRequest("/chat", "h2c", RandomKey())));
  REQUIRE(h2c.ReadMessage(HttpParser::Kind::kResponse, head, body));
  CHECK(head.status == 403);
  CHECK(body.empty());
  CHECK(h2c.ClosedByPeer());
  close(h2c.fd);
  CHECK(mesh.app.upgrades_seen() == upgrades_before);

  // Counted on both sidecars; a's access log has the tunnel with 101.
  const std::string a_stats = mesh.Stats(mesh.a);
  const std::string b_stats = mesh.Stats(mesh.b);
  INFO(a_stats);
  CHECK(absl::StrContains(a_stats, "weft_proxy_upgrades_total{direction=\"outbound\",type=\"websocket\"} 1"));
  CHECK(absl::StrContains(b_stats, "weft_proxy_upgrades_total{direction=\"inbound\",type=\"websocket\"} 1"));
  CHECK(absl::StrContains(a_stats, "weft_proxy_upgrades_refused_total{direction=\"outbound\"} 1"));
  CHECK(absl::StrContains(a_stats, "weft_proxy_upgrades_active{direction=\"outbound\"} 0"));
  const double sent = MetricValue(
      a_stats, "weft_proxy_upgrade_bytes_total{direction=\"outbound\",flow=\"downstream_to_upstream\"}");
  const double received = MetricValue(
      b_stats, "weft_proxy_upgrade_bytes_total{direction=\"inbound\",flow=\"upstream_to_downstream\"}");
  CHECK(sent >= 200 * 1024);
  CHECK(received >= 200 * 1024);
  REQUIRE(WaitFor([&] { return absl::StrContains(ReadFile(mesh.access_log), "\"response_code\":101"); },
                  absl::Seconds(5)));
}

}  // namespace
}  // namespace weft::e2e
