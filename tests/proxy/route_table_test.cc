// RouteTable (proxy/route_table.h) against the compiled configuration a
// sidecar really receives: every golden case's outbound RouteConfiguration
// is compiled with policy/ and then each request of a generated set is
// routed by weft-proxy's table and by the reference simulator
// (tests/testing/xds_simulator.h); they must agree on the virtual host, the
// route and the clusters. Plus rewrites, redirects and weighted picks.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "discovery/manifest_parser.h"
#include "google/protobuf/text_format.h"
#include "discovery/mesh_object.h"
#include "policy/compiler.h"
#include "policy/resource_types.h"
#include "tests/testing/golden.h"
#include "proxy/route_table.h"
#include "tests/testing/xds_simulator.h"

namespace weft::proxy {
namespace {

using envoy::config::route::v3::RouteConfiguration;

RouteConfiguration CompileOutbound(const std::string& golden, const std::string& ns, const std::string& sa,
                                   const std::string& ip) {
  auto out = testing::CompileGoldenForSidecar(golden, ns, sa, ip);
  INFO(out.status().message());
  REQUIRE(out.ok());
  RouteConfiguration rc;
  auto type = out->resources.find(policy::kRouteType);
  REQUIRE(type != out->resources.end());
  const auto& routes = type->second;
  REQUIRE(routes.count("outbound") == 1);
  REQUIRE(routes.at("outbound").body->UnpackTo(&rc));
  return rc;
}

// Requests built from what the config itself matches on, plus near misses.
std::vector<testing::SimRequest> Requests(const RouteConfiguration& rc) {
  std::set<std::string> hosts = {"unknown.example", "10.9.9.9:80"};
  std::set<std::string> paths = {"/", "/x", "/v2", "/v2/", "/v2x", "/api/v1?x=1", "/a/b/c?q=v&r=1"};
  std::set<std::pair<std::string, std::string>> headers;
  std::set<std::string> methods = {"GET", "POST"};
  for (const auto& vh : rc.virtual_hosts()) {
    for (const auto& d : vh.domains()) hosts.insert(d);
    for (const auto& r : vh.routes()) {
      const auto& m = r.match();
      for (const std::string& p : {m.prefix(), m.path(), m.path_separated_prefix()}) {
        if (p.empty()) continue;
        paths.insert(p);
        paths.insert(p + "/more");
        paths.insert(p + "x");
      }
      for (const auto& h : m.headers()) {
        if (h.name() == ":method") {
          methods.insert(h.string_match().exact());
          continue;
        }
        headers.insert({h.name(), h.string_match().exact()});
        headers.insert({h.name(), "other"});
      }
      for (const auto& q : m.query_parameters()) {
        std::string v = q.string_match().exact();
        paths.insert("/?" + q.name() + "=" + v);
        for (const auto& p : std::vector<std::string>{m.prefix(), m.path(), m.path_separated_prefix()}) {
          if (!p.empty()) paths.insert(p + "?" + q.name() + "=" + v);
        }
      }
    }
  }
  std::vector<testing::SimRequest> out;
  for (const auto& host : hosts) {
    for (const auto& path : paths) {
      for (const auto& method : methods) {
        testing::SimRequest r;
        r.host = host;
        r.path = path;
        r.method = method;
        out.push_back(r);
        for (const auto& [k, v] : headers) {
          testing::SimRequest h = r;
          h.headers[k] = v;
          out.push_back(h);
        }
      }
    }
  }
  return out;
}

void CheckAgainstSimulator(const std::string& golden, const std::string& ns, const std::string& sa,
                           const std::string& ip) {
  RouteConfiguration rc = CompileOutbound(golden, ns, sa, ip);
  auto table = RouteTable::Create(rc);
  INFO(golden);
  REQUIRE(table.ok());
  size_t routed = 0;
  for (const auto& req : Requests(rc)) {
    testing::RouteDecision want = testing::TraceRoutes(rc, req);
    HeaderList headers(req.headers.begin(), req.headers.end());
    const VirtualHostEntry* vh = (*table)->FindVirtualHost(req.host);
    INFO(req.method << " " << req.host << req.path << " headers " << headers.size());
    REQUIRE((vh ? vh->name : "") == want.virtual_host);
    if (vh == nullptr) continue;
    const RouteEntry* r = RouteTable::FindRoute(*vh, {req.host, req.method, req.path, &headers});
    REQUIRE((r ? r->name : "") == want.route);
    if (r == nullptr) continue;
    ++routed;
    if (r->action == RouteEntry::ActionKind::kCluster) {
      std::vector<std::pair<std::string, uint32_t>> got;
      for (const auto& c : r->clusters) got.emplace_back(c.name, c.weight);
      auto expected = want.clusters;
      expected.erase(std::remove_if(expected.begin(), expected.end(), [](const auto& c) { return c.second == 0; }),
                     expected.end());
      CHECK(got == expected);
    } else if (r->action == RouteEntry::ActionKind::kDirect) {
      CHECK(r->direct_status == want.status);
    } else {
      CHECK(r->redirect.status == want.status);
    }
  }
  CHECK(routed > 0);
}

TEST_CASE("route table agrees with the xDS simulator on compiled sidecar config", "[proxy][routes]") {
  CheckAgainstSimulator("httproute_matching", "shop", "frontend", "10.0.0.5");
  CheckAgainstSimulator("consumer_routes", "shop", "frontend", "10.0.0.5");
  CheckAgainstSimulator("parent_port", "shop", "frontend", "10.0.0.5");
  CheckAgainstSimulator("traffic_policy", "shop", "frontend", "10.0.0.5");
}

RouteConfiguration Parse(const std::string& text) {
  RouteConfiguration rc;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &rc));
  return rc;
}

TEST_CASE("rewrites, redirects and weights", "[proxy][routes]") {
  auto table = RouteTable::Create(Parse(R"pb(
    name: "t"
    virtual_hosts {
      name: "v" domains: "svc" domains: "svc:80"
      routes { name: "strip" match { path_separated_prefix: "/strip" } route { cluster: "c" prefix_rewrite: "/" } }
      routes { name: "full" match { path: "/full" }
               route { cluster: "c" regex_rewrite { pattern { regex: "^/.*$" } substitution: "/replaced" } } }
      routes { name: "moved" match { prefix: "/old" }
               redirect { host_redirect: "new.example" prefix_rewrite: "/new" response_code: PERMANENT_REDIRECT } }
      routes { name: "split" match { prefix: "/" }
               route { weighted_clusters { clusters { name: "a" weight { value: 90 } }
                                           clusters { name: "b" weight { value: 10 } } } } }
    })pb"));
  REQUIRE(table.ok());
  const VirtualHostEntry* vh = (*table)->FindVirtualHost("SVC:80");
  REQUIRE(vh != nullptr);
  CHECK((*table)->FindVirtualHost("svc:81") == nullptr);
  auto route = [&](const std::string& path) { return RouteTable::FindRoute(*vh, {"svc", "GET", path, nullptr}); };
  CHECK(route("/strip/x?y=1")->RewritePath("/strip/x?y=1") == "//x?y=1");
  CHECK(route("/strip")->RewritePath("/strip") == "/");
  CHECK(route("/full")->RewritePath("/full?q") == "/replaced?q");
  const RouteEntry* moved = route("/old/page?a=b");
  REQUIRE(moved->action == RouteEntry::ActionKind::kRedirect);
  CHECK(moved->redirect.status == 308);
  CHECK(moved->RedirectLocation("svc:80", "/old/page?a=b") == "http://new.example/new/page?a=b");
  const RouteEntry* split = route("/anything");
  std::map<std::string, int> picks;
  for (uint64_t i = 0; i < 1000; ++i) picks[split->PickCluster(i * 7919)]++;
  CHECK(picks["a"] == 900);
  CHECK(picks["b"] == 100);
}

TEST_CASE("broken route configurations are rejected with the field", "[proxy][routes]") {
  auto bad = RouteTable::Create(Parse(R"pb(
    name: "t"
    virtual_hosts { name: "v" domains: "x" routes { match { safe_regex { regex: "(" } } route { cluster: "c" } } }
    virtual_hosts { name: "w" domains: "x" routes { match { prefix: "/" } } })pb"));
  REQUIRE(!bad.ok());
  std::string msg(bad.status().message());
  CHECK(msg.find("virtual_hosts[0].routes[0].match.safe_regex: invalid regex") != std::string::npos);
  CHECK(msg.find("virtual_hosts[1].domains: domain \"x\" is repeated") != std::string::npos);
  CHECK(msg.find("virtual_hosts[1].routes[0]: needs route, redirect or direct_response") != std::string::npos);

  // A per-route local rate limit needs its own bucket.
  RouteConfiguration rc = Parse(R"pb(
    name: "t"
    virtual_hosts {
      name: "v"
      domains: "*"
      routes {
        match { prefix: "/" }
        route { cluster: "c" }
      }
    })pb");
  envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit no_bucket;
  no_bucket.set_stat_prefix("x");
  (*rc.mutable_virtual_hosts(0)->mutable_routes(0)->mutable_typed_per_filter_config())["rl"].PackFrom(
      no_bucket);
  auto refused = RouteTable::Create(rc);
  REQUIRE(!refused.ok());
  CHECK(
      std::string(refused.status().message())
          .find("virtual_hosts[0].routes[0].typed_per_filter_config[rl]: token_bucket: required per route") !=
      std::string::npos);
}

}  // namespace
}  // namespace weft::proxy
