// weft-proxy's limits end to end (issue 8): weftd in file mode and echo apps
// behind real weft-proxy sidecars (tests/e2e/harness/sidecar_mesh.h) —
// orders (127.0.0.2, the caller) and payments (127.0.0.3, answers every
// request with 503) — plus "stalled" (127.0.0.5), a Workload whose address
// is a socket of this test that accepts TCP but never answers the TLS
// handshake, so a connection to it stays pending. The test asserts what a
// user relies on:
// - a retry budget bounds the retries in progress under concurrent load
//   (counted by orders' sidecar and by payments' app), where the fixed
//   maxRetries alone lets every request retry;
// - a request body streamed beyond the 64 KiB retry buffer is not retried:
//   the caller gets the failure and the upstream sees one request;
// - beyond maxConnections and beyond maxPendingRequests a request gets 503
//   with x-envoy-overloaded: true, counted in
//   weft_proxy_upstream_overflow_total{cluster,kind}.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

struct Reply {
  int status = 0;
  std::string body;
  std::string overloaded;  // x-envoy-overloaded
};

// The value of the Prometheus series `series` (name{labels}) in `text`; 0 when absent.
double Series(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return 0;
}

// A loopback TCP listener that never accepts: the kernel completes the TCP
// handshake, nothing ever answers a TLS ClientHello.
class StalledListener {
 public:
  StalledListener(const std::string& ip, int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) == 1);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 128) == 0);
  }
  ~StalledListener() {
    if (fd_ >= 0) close(fd_);
  }
  StalledListener(const StalledListener&) = delete;
  StalledListener& operator=(const StalledListener&) = delete;

 private:
  int fd_ = -1;
};

const char kPaymentsCluster[] = "outbound|80||payments.shop.svc.cluster.local";
const char kStalledCluster[] = "outbound|80||stalled.shop.svc.cluster.local";

class Mesh : public SidecarMesh {
 public:
  Mesh() : SidecarMesh("weft-e2e-limits-") {
    std::string manifests;
    for (const SidecarWorkload* w : {&orders, &payments, &stalled}) {
      manifests += ServiceWithWorkloadManifest(*w);
    }
    Apply("mesh.yaml", manifests);
    REQUIRE(StartWeftd({&orders, &payments}).ok());
    REQUIRE(StartEcho(orders, {}).ok());
    REQUIRE(StartEcho(payments, {"--fail-every=1"}).ok());
  }

  // orders' app sends METHOD http://host/path (with `body` for POST) through its sidecar.
  Reply Call(const std::string& host, const std::string& path, const std::string* body = nullptr,
             int read_timeout_s = 90) {
    httplib::Client client(orders.ip, orders.outbound_port);
    client.set_connection_timeout(5);
    client.set_read_timeout(read_timeout_s);
    client.set_write_timeout(30);
    httplib::Headers headers{{"Host", host}};
    auto r = body != nullptr ? client.Post(path, headers, *body, "application/octet-stream")
                             : client.Get(path, headers);
    if (!r) return {};
    return {r->status, r->body, r->get_header_value("x-envoy-overloaded")};
  }

  double OrdersSeries(const std::string& series) {
    return Series(HttpGet(orders.ip, orders.admin_port, "/stats/prometheus").body, series);
  }
  double Retries() {
    return OrdersSeries(
        absl::StrCat("weft_proxy_upstream_retries_total{cluster=\"", kPaymentsCluster, "\"}"));
  }
  double Overflows(const std::string& cluster, const std::string& kind) {
    return OrdersSeries(
        absl::StrCat("weft_proxy_upstream_overflow_total{cluster=\"", cluster, "\",kind=\"", kind, "\"}"));
  }
  // Requests payments' app has answered (examples/echo: /echo-stats). Its
  // threads may all be held a while by the sidecar's idle keep-alive
  // connections (cpp-httplib serves a connection per thread): asked patiently.
  int PaymentsRequests() {
    int requests = -1;
    WaitFor(
        [&] {
          auto j = nlohmann::json::parse(
              HttpGet(payments.ip, payments.app_port, "/echo-stats", absl::Seconds(15)).body, nullptr, false);
          requests = j.is_object() ? j.value("requests", -1) : -1;
          return requests >= 0;
        },
        absl::Seconds(40));
    return requests;
  }
  std::string ConfigDump() { return HttpGet(orders.ip, orders.admin_port, "/config_dump").body; }

  // `n` concurrent GETs of payments' `path`; returns how long they took, in seconds.
  double Burst(int n, const std::string& path) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    std::vector<int> codes(n);
    for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { codes[i] = Call("payments", path).status; });
    for (auto& t : threads) t.join();
    for (int c : codes) CHECK(c == 503);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // A request to stalled held in its TLS handshake while `probe` runs; the
  // probe's reply.
  Reply WhileStalled() {
    std::thread holder([&] { Call("stalled", "/hold", nullptr, 2); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Reply r = Call("stalled", "/probe", nullptr, 2);
    holder.join();
    return r;
  }

  SidecarWorkload orders{"orders", "shop", "127.0.0.2", "orders"};
  SidecarWorkload payments{"payments", "shop", "127.0.0.3", "payments"};
  SidecarWorkload stalled{"stalled", "shop", "127.0.0.5", "stalled"};
  StalledListener stalled_listener{stalled.ip, stalled.inbound_port};
};

// Retries on 5xx, 4 per request, with room for every concurrent one
// (maxRetries: 100), and optionally a retry budget.
std::string RetryPolicy(const std::string& budget) {
  return absl::StrCat(R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: payments-retries, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: payments}]
  retries: {attempts: 4, retryOn: [5xx]}
  timeout: 120s
  connectionLimits: {maxRetries: 100)",
                      budget.empty() ? "" : ", retryBudget: " + budget, "}\n");
}

// connectionLimits `limits` for Service stalled.
std::string StalledLimits(const std::string& limits) {
  return "apiVersion: weft.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: stalled-limits, namespace: "
         "shop}\n"
         "spec:\n  targetRefs: [{kind: Service, name: stalled}]\n  connectionLimits: " +
         limits + "\n";
}

TEST_CASE("weft-proxy: retry budget, unretried streamed bodies, connection and pending overflow",
          "[e2e][proxy][limits]") {
  Mesh mesh;
  REQUIRE(WaitFor([&] { return mesh.Call("payments", "/up").status == 503; }, absl::Seconds(15)));

  // Retries without a budget: one failing GET is tried 1 + 4 times.
  mesh.Apply("payments.yaml", RetryPolicy(""));
  REQUIRE(WaitFor(
      [&] {
        const int before = mesh.PaymentsRequests();
        return mesh.Call("payments", "/once").status == 503 && mesh.PaymentsRequests() - before == 5;
      },
      absl::Seconds(20)));

  // Six concurrent requests to an upstream that fails after 300 ms: every
  // one is retried 4 times.
  const int kConcurrent = 6;
  const std::string slow_path = "/pay?sleep_ms=300";
  {
    const double retries = mesh.Retries();
    const int requests = mesh.PaymentsRequests();
    mesh.Burst(kConcurrent, slow_path);
    CHECK(mesh.Retries() - retries == 4 * kConcurrent);
    CHECK(mesh.PaymentsRequests() - requests == 5 * kConcurrent);
  }

  // A body within the retry buffer is retried; one streamed beyond it
  // (64 KiB) is not: the caller gets the failure, payments sees one request.
  {
    const std::string small(1024, 's');
    int requests = mesh.PaymentsRequests();
    double retries = mesh.Retries();
    CHECK(mesh.Call("payments", "/upload", &small).status == 503);
    CHECK(mesh.PaymentsRequests() - requests == 5);
    CHECK(mesh.Retries() - retries == 4);

    const std::string large(256 * 1024, 'L');
    requests = mesh.PaymentsRequests();
    retries = mesh.Retries();
    Reply r = mesh.Call("payments", "/upload", &large);
    CHECK(r.status == 503);
    CHECK(absl::StrContains(r.body, "\"failed\":true"));  // the upstream's own answer
    CHECK(mesh.PaymentsRequests() - requests == 1);
    CHECK(mesh.Retries() - retries == 0);
  }

  // The same burst under a retry budget of 20% of the active requests, at
  // least 1: with 6 active that is 1 retry in progress at a time.
  mesh.Apply("payments.yaml", RetryPolicy("{percent: 20, minRetryConcurrency: 1}"));
  REQUIRE(WaitFor(
      [&] {
        const std::string dump = mesh.ConfigDump();
        return absl::StrContains(dump, "retryBudget") || absl::StrContains(dump, "retry_budget");
      },
      absl::Seconds(20)));
  {
    const double retries = mesh.Retries();
    const double refused = mesh.Overflows(kPaymentsCluster, "retries");
    const int requests = mesh.PaymentsRequests();
    const double seconds = mesh.Burst(kConcurrent, slow_path);
    const double made = mesh.Retries() - retries;
    INFO("retries under the budget: " << made << " in " << seconds << " s");
    // One retry at a time, each taking at least 300 ms: at most one per 300 ms of the burst.
    CHECK(made >= 1);
    CHECK(made <= std::floor(seconds / 0.3) + 1);
    CHECK(made < 4 * kConcurrent);
    CHECK(mesh.Overflows(kPaymentsCluster, "retries") > refused);
    CHECK(mesh.PaymentsRequests() - requests == kConcurrent + static_cast<int>(made));
  }

  // maxConnections: 1 — a second request while the first one's connection
  // is open (stalled in its TLS handshake) overflows.
  mesh.Apply("stalled.yaml", StalledLimits("{maxConnections: 1}"));
  Reply overflow;
  REQUIRE(WaitFor(
      [&] {
        overflow = mesh.WhileStalled();
        return overflow.status == 503 && overflow.overloaded == "true";
      },
      absl::Seconds(60)));
  CHECK(absl::StrContains(overflow.body, "reset reason: overflow"));
  CHECK(mesh.Overflows(kStalledCluster, "connections") >= 1);

  // maxPendingRequests: 1 (connections unlimited) — a second request while
  // the first one waits for its connection overflows.
  mesh.Apply("stalled.yaml", StalledLimits("{maxPendingRequests: 1}"));
  REQUIRE(WaitFor(
      [&] {
        overflow = mesh.WhileStalled();
        return overflow.status == 503 && overflow.overloaded == "true" &&
               mesh.Overflows(kStalledCluster, "pending") >= 1;
      },
      absl::Seconds(60)));
  CHECK(absl::StrContains(overflow.body, "reset reason: overflow"));
}

}  // namespace
}  // namespace weft::e2e
