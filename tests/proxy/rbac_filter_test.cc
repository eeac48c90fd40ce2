// The RBAC filter (proxy/rbac_filter.h) on what weftd really compiles: the
// inbound chains of the `authorization` golden case run through weft-proxy's
// filters and through the reference simulator (tests/testing/xds_simulator.h)
// over a generated set of peers and requests; they must agree on every
// decision and on the policy that decided. Plus the Envoy rules weftd does
// not emit (not, headers, port ranges) and configs that must be NACKed.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "google/protobuf/text_format.h"
#include "policy/compiler.h"
#include "policy/resource_types.h"
#include "tests/testing/golden.h"
#include "proxy/proxy_config.h"
#include "proxy/rbac_filter.h"
#include "tests/testing/xds_simulator.h"

namespace weft::proxy {
namespace {

policy::ProxyResources CompileGolden(const std::string& golden, const std::string& ns, const std::string& sa,
                                     const std::string& ip) {
  auto out = testing::CompileGoldenForSidecar(golden, ns, sa, ip);
  INFO(out.status().message());
  REQUIRE(out.ok());
  return *std::move(out);
}

XdsResources ToXds(const policy::ProxyResources& compiled) {
  XdsResources r;
  for (const auto& [type, resources] : compiled.resources) {
    for (const auto& [name, res] : resources) r.by_type[std::string(type)][name] = {*res.body, "1"};
  }
  return r;
}

// weft-proxy's verdict: the chain's RBAC filters in order.
std::pair<bool, std::string> ProxyVerdict(const InboundChain& chain, const testing::SimRequest& req,
                                          const std::string& principal, uint32_t port) {
  HeaderList headers;
  for (const auto& [k, v] : req.headers) headers.emplace_back(k, v);
  for (const auto& f : chain.filters) {
    if (!f.rbac) continue;
    RbacDecision d = f.rbac->Evaluate({{req.host, req.method, req.path, &headers}, principal, port});
    if (!d.allowed) return {false, f.name + (d.policy.empty() ? "" : " " + d.policy)};
  }
  return {true, ""};
}

TEST_CASE("RBAC: weft-proxy agrees with the simulator on the compiled authorization policies",
          "[proxy][rbac]") {
  const std::vector<std::string> principals = {"",  // plaintext or no certificate
                                               "spiffe://cluster.local/ns/shop/sa/frontend",
                                               "spiffe://cluster.local/ns/shop/sa/orders",
                                               "spiffe://cluster.local/ns/ops/sa/deployer",
                                               "spiffe://cluster.local/ns/opsx/sa/deployer",
                                               "spiffe://cluster.local/ns/infra/sa/monitoring",
                                               "spiffe://cluster.local/ns/shop/sa/frontend-2"};
  const std::vector<std::string> methods = {"GET", "POST", "DELETE"};
  const std::vector<std::string> paths = {"/",       "/charge",  "/charge?x=1", "/chargex", "/refund/1",
                                          "/refund", "/healthz", "/admin/x",    "/admin",   "/admin/"};
  int checked = 0, denied = 0, allowed = 0;
  for (const auto& [sa, ip] : {std::pair{"orders", "10.0.1.1"}, std::pair{"orders-v2", "10.0.1.2"}}) {
    auto compiled = CompileGolden("authorization", "shop", sa, ip);
    auto cfg = ProxyConfig::Build(ToXds(compiled));
    REQUIRE(cfg.ok());
    for (uint32_t port : {18081u, 18082u}) {
      const InboundPort* ip_port = (*cfg)->Inbound(port);
      if (ip_port == nullptr) continue;
      for (bool tls : {true, false}) {
        const auto& slot = tls ? ip_port->mtls : ip_port->plaintext;
        if (!slot) continue;
        CHECK(slot->unenforced_filters.empty());
        CHECK_FALSE(slot->filters.empty());
        for (const auto& principal : principals) {
          if (tls && principal.empty()) continue;
          for (const auto& method : methods) {
            for (const auto& path : paths) {
              testing::SimRequest req;
              req.host = "orders.shop:8080";
              req.method = method;
              req.path = path;
              testing::SimConnection conn{port, tls, tls ? principal : ""};
              auto sim = testing::TraceInbound(compiled, conn, req);
              REQUIRE(sim.connected);
              auto [ok, by] = ProxyVerdict(*slot, req, tls ? principal : "", port);
              INFO(sa << " port " << port << (tls ? " mtls " : " plaintext ") << principal << " " << method
                      << " " << path);
              CHECK(ok == (sim.status != 403));
              CHECK(by == sim.denied_by);
              ++checked;
              ok ? ++allowed : ++denied;
            }
          }
        }
      }
    }
  }
  CHECK(checked > 200);
  CHECK(allowed > 5);  // the set exercises both outcomes
  CHECK(denied > 10);
}

TEST_CASE("RBAC: DENY wins, exact and wildcard principals, methods, paths and ports", "[proxy][rbac]") {
  auto compiled = CompileGolden("authorization", "shop", "orders", "10.0.1.1");
  auto cfg = ProxyConfig::Build(ToXds(compiled));
  REQUIRE(cfg.ok());
  const InboundChain& chain = *(*cfg)->Inbound(18081)->mtls;
  REQUIRE(chain.filters.size() == 2);
  CHECK(chain.filters[0].rbac->action() == RbacFilterConfig::Action::kDeny);
  CHECK(chain.filters[1].rbac->action() == RbacFilterConfig::Action::kAllow);
  auto verdict = [&](const std::string& principal, const std::string& method, const std::string& path) {
    testing::SimRequest r;
    r.host = "orders";
    r.method = method;
    r.path = path;
    return ProxyVerdict(chain, r, principal, 18081);
  };
  const std::string frontend = "spiffe://cluster.local/ns/shop/sa/frontend";
  CHECK(verdict(frontend, "POST", "/charge").first);
  CHECK(verdict(frontend, "POST", "/refund/7?full=1").first);
  CHECK_FALSE(verdict(frontend, "GET", "/charge").first);  // method
  CHECK_FALSE(verdict("spiffe://cluster.local/ns/shop/sa/payments", "POST", "/charge").first);
  CHECK(verdict("spiffe://cluster.local/ns/ops/sa/anyone", "POST", "/charge").first);    // namespace
  CHECK(verdict("spiffe://cluster.local/ns/x/sa/monitoring", "GET", "/healthz").first);  // *suffix
  CHECK_FALSE(verdict("", "GET", "/healthz").first);  // no certificate: no principal
  // DENY before ALLOW: a caller the ALLOW policy admits is still refused on /admin/*.
  auto denied = verdict("spiffe://cluster.local/ns/x/sa/monitoring", "GET", "/admin/users");
  CHECK_FALSE(denied.first);
  CHECK(denied.second == "envoy.filters.http.rbac.deny shop/deny-admin/rules[0]");
  CHECK(verdict(frontend, "POST", "/charge").second.empty());
  CHECK(verdict(frontend, "GET", "/nope").second == "envoy.filters.http.rbac.allow");
}

envoy::extensions::filters::http::rbac::v3::RBAC ParseRbac(const std::string& text) {
  envoy::extensions::filters::http::rbac::v3::RBAC rbac;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &rbac));
  return rbac;
}

TEST_CASE("RBAC: not rules, headers, port ranges, and no rules at all", "[proxy][rbac]") {
  auto rbac = RbacFilterConfig::Create(
      ParseRbac(R"pb(
        rules {
          action: ALLOW
          policies {
            key: "not-delete-on-admin-ports"
            value {
              permissions {
                and_rules {
                  rules {
                    not_rule {
                      header {
                        name: ":method"
                        string_match { exact: "DELETE" }
                      }
                    }
                  }
                  rules { destination_port_range { start: 9000 end: 9100 } }
                }
              }
              principals {
                and_ids {
                  ids { authenticated { principal_name { prefix: "spiffe://cluster.local/ns/ops/" } } }
                  ids { not_id { header { name: "x-canary" present_match: true } } }
                }
              }
            }
          }
        })pb"),
      "rbac");
  REQUIRE(rbac.ok());
  HeaderList none, canary = {{"X-Canary", "1"}};
  auto eval = [&](std::string_view method, uint32_t port, const HeaderList& h, std::string_view who) {
    return (*rbac)->Evaluate({{"h", method, "/", &h}, who, port}).allowed;
  };
  const std::string ops = "spiffe://cluster.local/ns/ops/sa/x";
  CHECK(eval("GET", 9000, none, ops));
  CHECK(eval("PUT", 9099, none, ops));
  CHECK_FALSE(eval("GET", 9100, none, ops));  // end is exclusive
  CHECK_FALSE(eval("DELETE", 9000, none, ops));
  CHECK_FALSE(eval("GET", 9000, canary, ops));
  CHECK_FALSE(eval("GET", 9000, none, "spiffe://cluster.local/ns/shop/sa/x"));
  CHECK_FALSE(eval("GET", 9000, none, ""));

  // No rules: Envoy enforces nothing. An ALLOW with no policies denies all.
  auto off = RbacFilterConfig::Create(ParseRbac(""), "rbac");
  REQUIRE(off.ok());
  CHECK((*off)->Evaluate({{"h", "GET", "/", &none}, "", 1}).allowed);
  auto closed = RbacFilterConfig::Create(ParseRbac("rules { action: ALLOW }"), "rbac");
  REQUIRE(closed.ok());
  CHECK_FALSE((*closed)->Evaluate({{"h", "GET", "/", &none}, ops, 1}).allowed);
}

TEST_CASE("RBAC: rules weft-proxy cannot evaluate are refused with their place", "[proxy][rbac]") {
  auto bad = RbacFilterConfig::Create(ParseRbac(R"pb(
                                        rules {
                                          action: DENY
                                          policies {
                                            key: "p"
                                            value {
                                              permissions {
                                                or_rules {
                                                  rules { any: true }
                                                  rules { requested_server_name { exact: "x" } }
                                                }
                                              }
                                              principals {
                                                direct_remote_ip {
                                                  address_prefix: "10.0.0.0"
                                                  prefix_len { value: 8 }
                                                }
                                              }
                                            }
                                          }
                                        })pb"),
                                      "rbac");
  REQUIRE_FALSE(bad.ok());
  const std::string msg(bad.status().message());
  CHECK(msg.find("rules.policies[\"p\"].permissions[0].or_rules.rules[1]: unsupported permission") !=
        std::string::npos);
  CHECK(msg.find("rules.policies[\"p\"].principals[0]: unsupported principal") != std::string::npos);

  // In a Listener: the whole update is NACKed, naming the chain and filter.
  auto compiled = CompileGolden("authorization", "shop", "orders", "10.0.1.1");
  XdsResources r = ToXds(compiled);
  envoy::config::listener::v3::Listener inbound;
  REQUIRE(r.by_type[kListenerType]["inbound"].resource.UnpackTo(&inbound));
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  auto* chain = inbound.mutable_filter_chains(0);
  REQUIRE(chain->filters(0).typed_config().UnpackTo(&hcm));
  hcm.mutable_http_filters(0)->mutable_typed_config()->PackFrom(
      ParseRbac(R"pb(rules {
                       policies {
                         key: "p"
                         value {
                           permissions { metadata {} }
                           principals { any: true }
                         }
                       }
                     })pb"));
  chain->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  r.by_type[kListenerType]["inbound"].resource.PackFrom(inbound);
  auto nack = ProxyConfig::Build(r);
  REQUIRE_FALSE(nack.ok());
  CHECK(std::string(nack.status().message())
            .find("Listener inbound: filter_chains[0].http_filters[0] (envoy.filters.http.rbac.deny): "
                  "rules.policies[\"p\"].permissions[0]: unsupported permission") != std::string::npos);
}

}  // namespace
}  // namespace weft::proxy
