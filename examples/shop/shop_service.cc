// shop-service: the services of the shop demo (examples/shop/), one binary
// with roles. Every app talks to the others only through its own sidecar
// (--proxy, used as an HTTP proxy: weft-proxy routes by the request's host),
// and every answer is one JSON line naming each instance that served it, so
// the shopper can tell where its requests went.
//
//   frontend  GET /buy      -> orders /order
//   orders    GET /order    -> inventory /reserve, payments /pay, shipping /ship
//   inventory GET /reserve  (--fail-every=N: every Nth answer is a 503)
//   payments  GET /pay      (--fail-every=1: a broken instance)
//   shipping  GET /ship
//   shopper   the customer: calls frontend /buy at --rps for --seconds and
//             prints a live account every second (in second 3, a flash sale
//             of 40 purchases at once); also tries to call payments directly
//             once a second, which only orders may do. --summary=FILE writes the
//             totals as JSON (the e2e test reads it).
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/flags.h"

ABSL_FLAG(std::string, role, "", "frontend | orders | inventory | payments | shipping | shopper");
ABSL_FLAG(std::string, name, "", "the instance name this app reports (default: the role)");
ABSL_FLAG(std::string, addr, "127.0.0.1:8080", "HOST:PORT to listen on (not for the shopper)");
ABSL_FLAG(std::string, proxy, "", "HOST:PORT of the sidecar's outbound listener");
ABSL_FLAG(int, fail_every, 0, "answer every Nth request with 503 (0: never; 1: always)");
ABSL_FLAG(double, rps, 20, "shopper: purchases per second");
ABSL_FLAG(int, seconds, 20, "shopper: how long to shop");
ABSL_FLAG(std::string, summary, "", "shopper: write the totals as JSON to this file");

namespace {

using nlohmann::json;

struct Reply {
  int status = 0;  // 0: no answer
  json body;       // the callee's JSON, or null
};

// GET http://host/path through the sidecar.
Reply Call(const std::string& proxy, const std::string& host, const std::string& path) {
  size_t colon = proxy.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(proxy.substr(colon + 1), &port)) return {};
  httplib::Client client(proxy.substr(0, colon), port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto r = client.Get(absl::StrCat("http://", host, path), httplib::Headers{{"Host", host}});
  if (!r) return {};
  Reply out{r->status, json::parse(r->body, nullptr, /*allow_exceptions=*/false)};
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}

void Answer(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

int Serve(const std::string& role, const std::string& name) {
  const std::string addr = absl::GetFlag(FLAGS_addr);
  const std::string proxy = absl::GetFlag(FLAGS_proxy);
  const int fail_every = absl::GetFlag(FLAGS_fail_every);
  size_t colon = addr.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
    fprintf(stderr, "shop-service: --addr must be HOST:PORT\n");
    return 2;
  }
  std::atomic<uint64_t> served{0};
  httplib::Server server;
  // httplib holds a thread per kept-alive connection: enough for the
  // sidecar's pooled connections during the flash sale.
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  // A leaf service: answers with its name, failing every Nth time if asked to.
  auto leaf = [&](const httplib::Request&, httplib::Response& res) {
    if (fail_every > 0 && ++served % static_cast<uint64_t>(fail_every) == 0) {
      Answer(res, 503, {{role, name}, {"error", name + " failed"}});
      return;
    }
    Answer(res, 200, {{role, name}});
  };
  if (role == "inventory") server.Get("/reserve", leaf);
  if (role == "payments") server.Get("/pay", leaf);
  if (role == "shipping") server.Get("/ship", leaf);
  if (role == "orders") {
    server.Get("/order", [&](const httplib::Request&, httplib::Response& res) {
      json out = {{"orders", name}};
      const std::vector<std::pair<std::string, std::string>> steps = {
          {"inventory.shop", "/reserve"}, {"payments.shop", "/pay"}, {"shipping.shop", "/ship"}};
      for (const auto& [host, path] : steps) {
        Reply r = Call(proxy, host, path);
        if (r.body.is_object()) out.update(r.body);
        if (r.status != 200) {
          out["error"] = absl::StrCat(host, path, " answered ", r.status);
          out["failed_step"] = host.substr(0, host.find('.'));
          out["failed_status"] = r.status;
          Answer(res, 502, out);
          return;
        }
      }
      Answer(res, 200, out);
    });
  }
  if (role == "frontend") {
    server.Get("/buy", [&](const httplib::Request&, httplib::Response& res) {
      Reply r = Call(proxy, "orders.shop", "/order");
      json out = r.body.is_object() ? r.body : json::object();
      out["frontend"] = name;
      if (r.status != 200 && !out.contains("failed_step")) {
        out["failed_step"] = "orders";
        out["failed_status"] = r.status;
      }
      Answer(res, r.status == 200 ? 200 : 502, out);
    });
  }
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  if (!server.bind_to_port(addr.substr(0, colon), port)) {
    fprintf(stderr, "shop-service: cannot listen on %s\n", addr.c_str());
    return 1;
  }
  fprintf(stderr, "shop-service %s (%s) listening on %s\n", name.c_str(), role.c_str(), addr.c_str());
  server.listen_after_bind();
  return 0;
}

// What the shopper saw, in total and in the last second.
struct Account {
  int requests = 0;
  std::map<int, int> codes;                                 // as the customer saw them
  std::map<std::string, std::map<std::string, int>> where;  // role -> instance -> answers
  std::map<std::string, int> failed_steps;                  // "inventory 429" -> count
  std::map<int, int> direct_payments;                       // shopper -> payments, by code

  void Add(const Reply& r) {
    requests++;
    codes[r.status]++;
    if (!r.body.is_object()) return;
    for (const char* role : {"orders", "inventory", "payments", "shipping"}) {
      if (r.body.contains(role) && r.body[role].is_string()) where[role][r.body[role].get<std::string>()]++;
    }
    if (r.body.contains("failed_step")) {
      failed_steps[absl::StrCat(r.body["failed_step"].get<std::string>(), " ",
                                r.body.value("failed_status", 0))]++;
    }
  }
  json ToJson() const {
    json j;
    j["requests"] = requests;
    for (const auto& [code, n] : codes) j["codes"][std::to_string(code)] = n;
    j["where"] = where;
    j["failed_steps"] = failed_steps;
    for (const auto& [code, n] : direct_payments) j["direct_payments"][std::to_string(code)] = n;
    return j;
  }
};

std::string Counts(const std::map<std::string, int>& m) {
  std::vector<std::string> parts;
  for (const auto& [k, n] : m) parts.push_back(absl::StrCat(k, " ", n));
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

int Shop(const std::string& proxy) {
  const double rps = absl::GetFlag(FLAGS_rps);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  Account total;
  const auto start = std::chrono::steady_clock::now();
  auto next = start;
  const auto gap = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(rps, 0.1)));
  printf("%-5s %-9s %-22s %-26s %-34s %-28s %s\n", "time", "requests", "customer saw", "orders", "inventory",
         "payments", "not delivered");
  for (int s = 1; s <= seconds; ++s) {
    Account second;
    std::mutex mu;
    auto buy = [&] {
      Reply r = Call(proxy, "frontend.shop", "/buy");
      std::lock_guard<std::mutex> lock(mu);
      second.Add(r);
      total.Add(r);
    };
    if (s == 3) {
      // A flash sale: 40 purchases at once (10 customers buying 4 each),
      // more than inventory's rate limit lets through.
      std::vector<std::thread> customers;
      for (int i = 0; i < 10; ++i) {
        customers.emplace_back([&] {
          for (int j = 0; j < 4; ++j) buy();
        });
      }
      for (auto& c : customers) c.join();
    }
    const auto end = start + std::chrono::seconds(s);
    while (next < end) {
      std::this_thread::sleep_until(next);
      next += gap;
      buy();
    }
    // Once a second: the customer tries to pay without ordering, which the
    // AuthorizationPolicy on payments forbids.
    Reply direct = Call(proxy, "payments.shop", "/pay");
    total.direct_payments[direct.status]++;
    std::map<std::string, int> codes;
    for (const auto& [code, n] : second.codes) codes[code == 0 ? "no answer" : std::to_string(code)] = n;
    printf("%3ds  %-9d %-22s %-26s %-34s %-28s %s\n", s, second.requests, Counts(codes).c_str(),
           Counts(second.where["orders"]).c_str(), Counts(second.where["inventory"]).c_str(),
           Counts(second.where["payments"]).c_str(), Counts(second.failed_steps).c_str());
    fflush(stdout);
  }
  printf("direct calls from the shopper to payments (only orders may call it): %s\n",
         Counts([&] {
           std::map<std::string, int> m;
           for (const auto& [code, n] : total.direct_payments) m[std::to_string(code)] = n;
           return m;
         }())
             .c_str());
  const std::string summary = absl::GetFlag(FLAGS_summary);
  if (!summary.empty()) std::ofstream(summary) << total.ToJson().dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  const std::string role = absl::GetFlag(FLAGS_role);
  std::string name = absl::GetFlag(FLAGS_name);
  if (name.empty()) name = role;
  const std::string proxy = absl::GetFlag(FLAGS_proxy);
  if (role == "shopper") {
    if (proxy.empty()) {
      fprintf(stderr, "shop-service: the shopper needs --proxy (its sidecar)\n");
      return 2;
    }
    return Shop(proxy);
  }
  for (const char* known : {"frontend", "orders", "inventory", "payments", "shipping"}) {
    if (role == known) return Serve(role, name);
  }
  fprintf(stderr, "shop-service: unknown --role '%s'\n", role.c_str());
  return 2;
}
