// latency_interleave: request latency at one connection per path, the
// paths taken in turn so that they share the machine's state.
//
// bench/proxy.sh measures each path with its own wrk run at one connection.
// On a virtual machine the tail of those runs moves by more than a
// millisecond from one minute to the next (docs/benchmarks.md, Session 9),
// so "p99 of the pair minus p99 of direct" compared two different moments.
// Here each path has one kept-alive connection and a closed loop sends one
// request on each in turn (a round, in a new random order each time, so that
// no path always follows the same one), so every path sees the same moments
// and the difference of their percentiles is what the extra hops add.
//
// usage: latency_interleave [--duration=5] [--warmup=1] --target=NAME,ADDR:PORT[,HOST] ...
// Prints, per target: requests, p50, p90, p99, p99.9 and max in ms, and each
// target's p50 and p99 minus the first target's. Exit 1 on a failed
// request (the message names the target).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Target {
  std::string name;
  std::string addr;
  uint16_t port = 0;
  std::string request;  // the whole GET, sent as is every time
  int fd = -1;
  std::vector<double> ms;
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "latency_interleave: %s\n", what.c_str());
  std::exit(1);
}

std::optional<Target> ParseTarget(std::string_view spec) {
  // NAME,ADDR:PORT[,HOST]
  Target t;
  size_t c1 = spec.find(',');
  if (c1 == std::string_view::npos || c1 == 0) return std::nullopt;
  t.name = std::string(spec.substr(0, c1));
  std::string_view rest = spec.substr(c1 + 1);
  size_t c2 = rest.find(',');
  std::string_view hostport = rest.substr(0, c2);
  std::string host = c2 == std::string_view::npos ? std::string(hostport) : std::string(rest.substr(c2 + 1));
  auto hp = weft::common::ParseHostPort(std::string(hostport));
  if (!hp.ok() || hp->port == 0 || host.empty()) return std::nullopt;
  t.addr = hp->host;
  t.port = static_cast<uint16_t>(hp->port);
  t.request = "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  return t;
}

void Connect(Target& t) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(t.port);
  if (inet_pton(AF_INET, t.addr.c_str(), &sa.sin_addr) != 1)
    Fail(t.name + ": not an IPv4 address: " + t.addr);
  t.fd = socket(AF_INET, SOCK_STREAM, 0);
  if (t.fd < 0) Fail(t.name + ": socket: " + std::strerror(errno));
  int one = 1;
  setsockopt(t.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(t.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    Fail(t.name + ": connect " + t.addr + ":" + std::to_string(t.port) + ": " + std::strerror(errno));
  }
}

// The Content-Length of a response head (case-insensitive name), or -1.
long ContentLength(std::string_view head) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    std::string_view line = head.substr(pos, head.find("\r\n", pos) - pos);
    constexpr std::string_view kName = "content-length:";
    if (line.size() > kName.size() &&
        std::equal(kName.begin(), kName.end(), line.begin(),
                   [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b); })) {
      return std::strtol(std::string(line.substr(kName.size())).c_str(), nullptr, 10);
    }
  }
  return -1;
}

// One request and its whole response; the latency in ms.
double RoundTrip(Target& t, std::string& buf) {
  const auto start = Clock::now();
  size_t sent = 0;
  while (sent < t.request.size()) {
    ssize_t n = send(t.fd, t.request.data() + sent, t.request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) Fail(t.name + ": send: " + (n < 0 ? std::strerror(errno) : "closed"));
    sent += static_cast<size_t>(n);
  }
  buf.clear();
  size_t need = 0;  // head + body, once the head is in
  char chunk[4096];
  for (;;) {
    ssize_t n = recv(t.fd, chunk, sizeof(chunk), 0);
    if (n <= 0) Fail(t.name + ": recv: " + (n < 0 ? std::strerror(errno) : "connection closed"));
    buf.append(chunk, static_cast<size_t>(n));
    if (need == 0) {
      size_t end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      std::string_view head(buf.data(), end + 2);
      if (head.substr(0, 12) != "HTTP/1.1 200")
        Fail(t.name + ": not 200: " + std::string(head.substr(0, 40)));
      long length = ContentLength(head);
      if (length < 0) Fail(t.name + ": response without Content-Length");
      need = end + 4 + static_cast<size_t>(length);
    }
    if (buf.size() >= need) {
      if (buf.size() > need) Fail(t.name + ": more bytes than the response");
      break;
    }
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  double duration_s = 5;
  double warmup_s = 1;
  std::vector<Target> targets;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.rfind("--duration=", 0) == 0) {
      duration_s = std::atof(argv[i] + 11);
    } else if (arg.rfind("--warmup=", 0) == 0) {
      warmup_s = std::atof(argv[i] + 9);
    } else if (arg.rfind("--target=", 0) == 0) {
      auto t = ParseTarget(arg.substr(9));
      if (!t) Fail("bad --target " + std::string(arg.substr(9)) + " (want NAME,ADDR:PORT[,HOST])");
      targets.push_back(std::move(*t));
    } else {
      Fail("unknown argument " + std::string(arg) +
           " (usage: latency_interleave [--duration=5] [--warmup=1] --target=NAME,ADDR:PORT[,HOST] ...)");
    }
  }
  if (targets.empty() || duration_s <= 0) Fail("need --target and a positive --duration");
  for (Target& t : targets) Connect(t);

  std::string buf;
  const size_t n = targets.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(1);  // the same sequence of orders every run
  const auto warm_until = Clock::now() + std::chrono::duration<double>(warmup_s);
  while (Clock::now() < warm_until) {
    for (Target& t : targets) RoundTrip(t, buf);
  }
  const auto until = Clock::now() + std::chrono::duration<double>(duration_s);
  size_t rounds = 0;
  for (; Clock::now() < until; ++rounds) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k : order) targets[k].ms.push_back(RoundTrip(targets[k], buf));
  }
  for (Target& t : targets) {
    close(t.fd);
    std::sort(t.ms.begin(), t.ms.end());
  }

  std::printf("latency_interleave: %zu rounds of %zu paths in %.0f s, one connection each\n", rounds, n,
              duration_s);
  std::printf("  %-9s %8s %8s %8s %8s %8s %8s\n", "path", "requests", "p50 ms", "p90 ms", "p99 ms",
              "p99.9 ms", "max ms");
  for (const Target& t : targets) {
    std::printf("  %-9s %8zu %8.3f %8.3f %8.3f %8.3f %8.3f\n", t.name.c_str(), t.ms.size(),
                Percentile(t.ms, 0.5), Percentile(t.ms, 0.9), Percentile(t.ms, 0.99), Percentile(t.ms, 0.999),
                t.ms.back());
  }
  const Target& base = targets.front();
  for (size_t i = 1; i < n; ++i) {
    const Target& t = targets[i];
    std::printf("  added over %s: %-9s p50 %+.3f ms, p99 %+.3f ms\n", base.name.c_str(), t.name.c_str(),
                Percentile(t.ms, 0.5) - Percentile(base.ms, 0.5),
                Percentile(t.ms, 0.99) - Percentile(base.ms, 0.99));
  }
  return 0;
}
