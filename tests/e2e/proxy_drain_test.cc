// weft-proxy's graceful shutdown end to end: weftd in file mode and two echo
// apps behind real weft-proxy sidecars — a (127.0.0.2, the caller) and b
// (127.0.0.3, --drain-timeout=20s). While a request through a to b's slow
// endpoint is in flight, b's sidecar gets SIGTERM, as Kubernetes sends it to
// a terminating pod. What a user relies on: the in-flight request still
// gets its 200; b's /ready says DRAINING; a connection to b that was waiting
// for its next request is closed; new connections to b's inbound listener
// are refused (callers retry elsewhere); b's sidecar exits with 0 as soon as
// its last connection is done, long before the drain timeout. Then a drain
// held up by a connection in the middle of a request head keeps a's outbound
// listener serving the app (a new connection gets its answer, with
// "Connection: close"), and a second signal ends it at once.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

SidecarWorkload MakeWorkload(const std::string& name, const std::string& ip) {
  SidecarWorkload w;
  w.name = name;
  w.ns = "shop";
  w.ip = ip;
  w.service_account = name;
  return w;
}

// One request on an open connection; the status, or 0. `head` gets the
// response head.
int Request(int fd, const std::string& host, const std::string& path, std::string* head = nullptr) {
  if (!SendAll(fd, absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\n\r\n"))) return 0;
  std::string got;
  char buf[4096];
  size_t end = std::string::npos;
  while ((end = got.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return 0;
    got.append(buf, static_cast<size_t>(n));
  }
  if (head != nullptr) *head = got.substr(0, end);
  // The echo app's bodies are small and framed by Content-Length: read them so
  // that the connection is at a request boundary.
  size_t length = 0;
  const std::string lower = absl::AsciiStrToLower(got.substr(0, end));
  size_t at = lower.find("content-length:");
  if (at != std::string::npos) length = std::stoul(lower.substr(at + 15));
  while (got.size() < end + 4 + length) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return 0;
    got.append(buf, static_cast<size_t>(n));
  }
  return got.size() > 12 ? std::atoi(got.c_str() + 9) : 0;
}

// True when the peer closed `fd` (recv sees the end, within its timeout).
bool ClosedByPeer(int fd) {
  char c;
  return recv(fd, &c, 1, 0) == 0;
}

TEST_CASE(
    "weft-proxy drains on SIGTERM: in-flight requests finish, idle connections close, peers are refused",
    "[e2e][proxy]") {
  SidecarMesh mesh("weft-e2e-drain-");
  SidecarWorkload a = MakeWorkload("a", "127.0.0.2");
  SidecarWorkload b = MakeWorkload("b", "127.0.0.3");
  b.proxy_flags = {"--drain-timeout=20s"};
  mesh.Apply("mesh.yaml", SidecarMesh::ServiceManifests({&a, &b}));
  REQUIRE(mesh.StartWeftd({&a, &b}).ok());
  REQUIRE(mesh.StartEcho(a).ok());
  REQUIRE(mesh.StartEcho(b).ok());

  // a reaches b over mTLS; a plaintext client (PERMISSIVE, the default)
  // reaches b's inbound directly and keeps its connection open, waiting.
  REQUIRE(WaitFor(
      [&] {
        int fd = ConnectTcp(a.ip, a.outbound_port, 5);
        int status = fd < 0 ? 0 : Request(fd, "b.shop", "/");
        if (fd >= 0) close(fd);
        return status == 200;
      },
      absl::Seconds(20)));
  const int idle = ConnectTcp(b.ip, b.inbound_port, 5);
  REQUIRE(idle >= 0);
  std::string idle_head;
  REQUIRE(Request(idle, "b.shop", "/", &idle_head) == 200);
  CHECK_FALSE(absl::StrContains(absl::AsciiStrToLower(idle_head), "connection: close"));

  // The request in flight: 3 s in b's app.
  int slow_status = 0;
  std::string slow_head;
  std::thread slow([&] {
    int fd = ConnectTcp(a.ip, a.outbound_port, 10);
    if (fd >= 0) {
      slow_status = Request(fd, "b.shop", "/slow?sleep_ms=3000", &slow_head);
      close(fd);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto sigterm_at = std::chrono::steady_clock::now();
  REQUIRE(kill(b.proxy->pid(), SIGTERM) == 0);

  // Draining: /ready says so, the waiting connection is closed, new
  // connections are refused, all while the slow request is still in b's app.
  CHECK(
      WaitFor([&] { return HttpGet(b.ip, b.admin_port, "/ready").body == "DRAINING\n"; }, absl::Seconds(1)));
  CHECK(HttpGet(b.ip, b.admin_port, "/ready").status == 503);
  CHECK(ClosedByPeer(idle));
  close(idle);
  CHECK(WaitFor(
      [&] {
        int fd = ConnectTcp(b.ip, b.inbound_port, 1);
        if (fd >= 0) close(fd);
        return fd < 0;
      },
      absl::Seconds(1)));
  CHECK(b.proxy->Running());  // so the connection was closed by the drain, not at exit

  // The request in flight completes, and the sidecar exits once it has.
  slow.join();
  CHECK(slow_status == 200);
  CHECK(b.proxy->Wait(absl::Seconds(5)));
  CHECK(b.proxy->ExitCode() == 0);
  CHECK(std::chrono::steady_clock::now() - sigterm_at < std::chrono::seconds(10));  // not the 20 s timeout
  const std::string log = b.proxy->Log();
  CHECK(absl::StrContains(log, "draining for up to 20s"));
  CHECK(absl::StrContains(log, "weft-proxy: drained; shutting down"));

  // Half a request head on a's outbound listener holds a's drain (5 s by
  // default); a second SIGTERM ends it at once.
  const int partial = ConnectTcp(a.ip, a.outbound_port, 5);
  REQUIRE(partial >= 0);
  REQUIRE(SendAll(partial, "GET / HTTP/1.1\r\nHost: b.sh"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(kill(a.proxy->pid(), SIGTERM) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(a.proxy->Running());
  // The app can still call out through its draining sidecar (here to b's
  // app port, which is not a mesh endpoint: passed through in plaintext).
  const int late = ConnectTcp(a.ip, a.outbound_port, 5);
  REQUIRE(late >= 0);
  std::string late_head;
  CHECK(Request(late, absl::StrCat(b.ip, ":", b.app_port), "/", &late_head) == 200);
  CHECK(absl::StrContains(absl::AsciiStrToLower(late_head), "connection: close"));
  CHECK(ClosedByPeer(late));
  close(late);
  CHECK(a.proxy->Running());
  REQUIRE(kill(a.proxy->pid(), SIGTERM) == 0);
  CHECK(a.proxy->Wait(absl::Seconds(2)));
  CHECK(a.proxy->ExitCode() == 1);
  close(partial);
}

}  // namespace
}  // namespace weft::e2e
