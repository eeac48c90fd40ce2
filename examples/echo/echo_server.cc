// echo-server: a small HTTP app for the demo mesh and the e2e tests. Every
// request gets a JSON reply naming this instance (--name) with the request's
// method, path (the request target, query included), headers
// (x-forwarded-client-cert included, which the sidecar sets; repeated ones
// comma-joined) and body size. /call?url=http://host/path makes an outbound
// request through the http proxy given by --proxy (the sidecar) and returns
// what came back, so tests can drive "app A calls app B".
// For resilience demos and tests: --fail-every=N answers every Nth echoed
// request with 503 (a flaky instance), and ?sleep_ms=N delays the answer
// (a slow one). GET /echo-stats answers how many requests were echoed, by
// Host header (e.g. to count mirrored "-shadow" copies); it is not counted.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:8080", "HOST:PORT to listen on");
ABSL_FLAG(std::string, name, "echo", "the name this instance reports");
ABSL_FLAG(std::string, proxy, "", "HOST:PORT of the outbound HTTP proxy for /call (the sidecar)");
ABSL_FLAG(int, fail_every, 0, "answer every Nth echoed request with 503 (0: never)");

int main(int argc, char** argv) {
  weft::common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  const std::string addr = absl::GetFlag(FLAGS_addr);
  const std::string name = absl::GetFlag(FLAGS_name);
  size_t colon = addr.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
    fprintf(stderr, "echo-server: --addr must be HOST:PORT\n");
    return 2;
  }
  const int fail_every = absl::GetFlag(FLAGS_fail_every);
  std::atomic<uint64_t> served{0};
  std::mutex stats_mu;
  std::map<std::string, uint64_t> by_host;
  uint64_t echoed = 0;
  httplib::Server server;
  auto echo = [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      ++echoed;
      ++by_host[req.get_header_value("Host")];
    }
    int sleep_ms = 0;
    if (absl::SimpleAtoi(req.get_param_value("sleep_ms"), &sleep_ms) && sleep_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(sleep_ms, 60000)));
    }
    if (fail_every > 0 && ++served % static_cast<uint64_t>(fail_every) == 0) {
      res.status = 503;
      res.set_content(nlohmann::json{{"name", name}, {"failed", true}}.dump() + "\n", "application/json");
      return;
    }
    nlohmann::json j;
    j["name"] = name;
    j["method"] = req.method;
    j["path"] = req.target;
    j["body_bytes"] = req.body.size();
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [k, v] : req.headers) {
      std::string key = k;
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (key == "remote_addr" || key == "remote_port" || key == "local_addr" || key == "local_port") continue;
      // A repeated header is reported as one comma-joined value, the way
      // HTTP folds it (RFC 9110 5.3), so appended values stay visible.
      if (headers.contains(key)) {
        headers[key] = headers[key].get<std::string>() + "," + v;
      } else {
        headers[key] = v;
      }
    }
    j["headers"] = headers;
    res.set_content(j.dump() + "\n", "application/json");
  };
  server.Get("/call", [&](const httplib::Request& req, httplib::Response& res) {
    std::string url = req.get_param_value("url");
    std::string proxy = absl::GetFlag(FLAGS_proxy);
    if (url.rfind("http://", 0) != 0 || proxy.empty()) {
      res.status = 400;
      res.set_content("need ?url=http://... and --proxy\n", "text/plain");
      return;
    }
    std::string rest = url.substr(7);
    size_t slash = rest.find('/');
    std::string host = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t pc = proxy.rfind(':');
    httplib::Client client(proxy.substr(0, pc), std::stoi(proxy.substr(pc + 1)));
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    auto r = client.Get(path, httplib::Headers{{"Host", host}});
    if (!r) {
      res.status = 502;
      res.set_content("call failed\n", "text/plain");
      return;
    }
    res.status = r->status;
    res.set_content(r->body, r->get_header_value("Content-Type"));
  });
  server.Get("/echo-stats", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(stats_mu);
    nlohmann::json j{{"name", name}, {"requests", echoed}, {"hosts", by_host}};
    res.set_content(j.dump() + "\n", "application/json");
  });
  server.Get(".*", echo);
  server.Post(".*", echo);
  server.Put(".*", echo);
  server.Delete(".*", echo);
  if (!server.bind_to_port(addr.substr(0, colon), port)) {
    fprintf(stderr, "echo-server: cannot listen on %s\n", addr.c_str());
    return 1;
  }
  fprintf(stderr, "echo-server %s listening on %s\n", name.c_str(), addr.c_str());
  server.listen_after_bind();
  return 0;
}
