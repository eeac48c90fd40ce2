// ProxyConfig (proxy/proxy_config.h) built from what the compiler really
// emits for sidecars: inbound chains per mTLS mode, upstream TLS with the
// expected SPIFFE IDs, endpoints by address; and updates weft-proxy must
// NACK, each with the place of the problem; upgrade_configs and stream idle
// timeouts; and a real ProxyServer closing idle downstream connections after
// the HCM's idle_timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "policy/compiler.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_server.h"
#include "tests/testing/golden.h"

namespace weft::proxy {
namespace {

XdsResources Compiled(const std::string& golden, const std::string& ns, const std::string& sa,
                      const std::string& ip) {
  auto out = testing::CompileGoldenForSidecar(golden, ns, sa, ip);
  INFO(out.status().message());
  REQUIRE(out.ok());
  XdsResources r;
  for (const auto& [type, resources] : out->resources) {
    for (const auto& [name, res] : resources) r.by_type[std::string(type)][name] = {*res.body, "1"};
  }
  return r;
}

// `r` with the outbound HCM's common_http_protocol_options.idle_timeout set
// to `seconds` (weftd sets none: nothing user-facing does).
XdsResources WithIdleTimeout(XdsResources r, int64_t seconds) {
  envoy::config::listener::v3::Listener outbound;
  REQUIRE(r.by_type[kListenerType]["outbound"].resource.UnpackTo(&outbound));
  auto* filter = outbound.mutable_filter_chains(0)->mutable_filters(0);
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  REQUIRE(filter->typed_config().UnpackTo(&hcm));
  hcm.mutable_common_http_protocol_options()->mutable_idle_timeout()->set_seconds(seconds);
  filter->mutable_typed_config()->PackFrom(hcm);
  r.by_type[kListenerType]["outbound"].resource.PackFrom(outbound);
  return r;
}

TEST_CASE("compiled sidecar config: inbound chains, upstream TLS, endpoints", "[proxy][config]") {
  auto orders = ProxyConfig::Build(Compiled("mtls_modes", "shop", "orders", "10.0.1.1"));
  REQUIRE(orders.ok());
  const InboundPort* port = (*orders)->Inbound(18081);
  REQUIRE(port != nullptr);  // PERMISSIVE: both chains
  REQUIRE(port->mtls);
  REQUIRE(port->plaintext);
  CHECK(port->mtls->tls);
  CHECK(port->mtls->require_client_certificate);
  CHECK(port->mtls->set_client_cert_header);
  CHECK_FALSE(port->plaintext->set_client_cert_header);
  CHECK((*orders)->Inbound(18082) == nullptr);
  REQUIRE((*orders)->outbound_routes() != nullptr);

  auto v2 = ProxyConfig::Build(Compiled("mtls_modes", "shop", "orders-v2", "10.0.1.2"));
  REQUIRE(v2.ok());
  const InboundPort* v2port = (*v2)->Inbound(18082);
  REQUIRE(v2port != nullptr);  // DISABLE: plaintext only
  CHECK_FALSE(v2port->mtls);
  CHECK(v2port->plaintext);

  // Upstream TLS to a STRICT/PERMISSIVE destination names its identities.
  bool saw_tls = false;
  for (const auto& [name, entry] : *(*orders)->resources().Type(kClusterType)) {
    const ClusterEntry* c = (*orders)->FindCluster(name);
    REQUIRE(c != nullptr);
    if (!c->tls) continue;
    saw_tls = true;
    CHECK_FALSE(c->expected_sans.empty());
    for (const auto& san : c->expected_sans) CHECK(san.rfind("spiffe://cluster.local/ns/", 0) == 0);
  }
  CHECK(saw_tls);
  const ClusterEntry* by_ep = (*orders)->ClusterOfEndpoint("10.0.1.1:18081");
  REQUIRE(by_ep != nullptr);
  CHECK(by_ep->name.find("orders.shop.svc.cluster.local") != std::string::npos);
}

TEST_CASE("RBAC and rate-limit filters are enforced; unknown HTTP filters make the chain fail closed",
          "[proxy][config]") {
  XdsResources r = Compiled("authorization", "shop", "orders", "10.0.1.1");
  auto cfg = ProxyConfig::Build(r);
  REQUIRE(cfg.ok());
  const InboundPort* port = (*cfg)->Inbound(18081);
  REQUIRE(port != nullptr);
  REQUIRE(port->mtls);
  CHECK(port->mtls->unenforced_filters.empty());
  REQUIRE(port->mtls->filters.size() == 2);
  CHECK(port->mtls->filters[0].name == "envoy.filters.http.rbac.deny");
  CHECK(port->mtls->filters[1].name == "envoy.filters.http.rbac.allow");

  // A filter weft-proxy does not know: accepted, but the chain refuses requests.
  envoy::config::listener::v3::Listener inbound;
  REQUIRE(r.by_type[kListenerType]["inbound"].resource.UnpackTo(&inbound));
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  REQUIRE(inbound.filter_chains(0).filters(0).typed_config().UnpackTo(&hcm));
  auto* ext = hcm.add_http_filters();
  ext->set_name("envoy.filters.http.ext_authz");
  ext->mutable_typed_config()->set_type_url(
      "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz");
  hcm.mutable_http_filters()->SwapElements(hcm.http_filters_size() - 1, hcm.http_filters_size() - 2);
  inbound.mutable_filter_chains(0)->mutable_filters(0)->mutable_typed_config()->PackFrom(hcm);
  r.by_type[kListenerType]["inbound"].resource.PackFrom(inbound);
  auto unknown = ProxyConfig::Build(r);
  REQUIRE(unknown.ok());
  bool fail_closed = false;
  for (uint32_t p : {18081u}) {
    const InboundPort* ip = (*unknown)->Inbound(p);
    for (const auto* chain : {ip->mtls ? &*ip->mtls : nullptr, ip->plaintext ? &*ip->plaintext : nullptr}) {
      if (chain != nullptr &&
          chain->unenforced_filters == std::vector<std::string>{"envoy.filters.http.ext_authz"}) {
        fail_closed = true;
      }
    }
  }
  CHECK(fail_closed);
}

TEST_CASE("bad updates are rejected with the place of the error", "[proxy][config]") {
  XdsResources r = Compiled("mtls_modes", "shop", "orders", "10.0.1.1");
  // A route with a broken regex in the outbound RouteConfiguration.
  envoy::config::route::v3::RouteConfiguration rc;
  REQUIRE(r.by_type[kRouteType]["outbound"].resource.UnpackTo(&rc));
  rc.mutable_virtual_hosts(0)->mutable_routes(0)->mutable_match()->mutable_safe_regex()->set_regex("([");
  r.by_type[kRouteType]["outbound"].resource.PackFrom(rc);
  auto bad = ProxyConfig::Build(r);
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message())
            .find("virtual_hosts[0].routes[0].match.safe_regex: invalid regex") != std::string::npos);

  // An inbound chain without a destination port, and a non-Listener under LDS.
  XdsResources r2 = Compiled("mtls_modes", "shop", "orders", "10.0.1.1");
  envoy::config::listener::v3::Listener inbound;
  REQUIRE(r2.by_type[kListenerType]["inbound"].resource.UnpackTo(&inbound));
  inbound.mutable_filter_chains(0)->mutable_filter_chain_match()->clear_destination_port();
  r2.by_type[kListenerType]["inbound"].resource.PackFrom(inbound);
  r2.by_type[kListenerType]["junk"].resource.PackFrom(rc);
  auto bad2 = ProxyConfig::Build(r2);
  REQUIRE_FALSE(bad2.ok());
  std::string msg(bad2.status().message());
  CHECK(msg.find("Listener inbound: filter_chains[0].filter_chain_match.destination_port: required") !=
        std::string::npos);
  CHECK(msg.find("Listener junk: not a Listener") != std::string::npos);
}

TEST_CASE("compiled TrafficPolicy: circuit breakers, retry budget, outlier detection, fault",
          "[proxy][config]") {
  // The traffic_policy golden input as the frontend sidecar gets it.
  auto cfg = ProxyConfig::Build(Compiled("traffic_policy", "shop", "frontend", "10.0.0.5"));
  INFO(cfg.status().message());
  REQUIRE(cfg.ok());
  const ClusterEntry* orders = (*cfg)->FindCluster("outbound|8080||orders.shop.svc.cluster.local");
  REQUIRE(orders != nullptr);
  CHECK(orders->breakers.max_connections == 100);
  CHECK(orders->breakers.max_pending_requests == 50);
  CHECK(orders->breakers.max_requests == 200);
  REQUIRE(orders->breakers.retry_budget);
  CHECK(orders->breakers.retry_budget->budget_percent == 25.0);
  CHECK(orders->breakers.retry_budget->min_retry_concurrency == 5);
  REQUIRE(orders->outlier);
  CHECK(orders->outlier->consecutive_5xx == 5);
  CHECK(orders->outlier->consecutive_gateway_failure == 3);
  CHECK(orders->outlier->enforcing_consecutive_gateway_failure == 100);
  CHECK(orders->outlier->interval_ms == 10000);
  CHECK(orders->outlier->base_ejection_time_ms == 30000);
  CHECK(orders->outlier->max_ejection_percent == 50);
  // A cluster without a policy keeps Envoy's defaults and no outlier detection.
  const ClusterEntry* v2 = (*cfg)->FindCluster("outbound|8080||orders-v2.shop.svc.cluster.local");
  REQUIRE(v2 != nullptr);
  CHECK(v2->breakers.max_requests == 1024);
  CHECK_FALSE(v2->outlier);
  // The fault rides on the orders route; the listener's own filter is inert.
  CHECK((*cfg)->outbound_fault() == nullptr);
  const auto* vh = (*cfg)->outbound_routes()->FindVirtualHost("orders.shop.svc.cluster.local:8080");
  REQUIRE(vh != nullptr);
  const RouteEntry* route =
      RouteTable::FindRoute(*vh, {"orders.shop.svc.cluster.local:8080", "GET", "/", nullptr});
  REQUIRE(route != nullptr);
  REQUIRE(route->fault);
  CHECK(route->fault->delay_ms == 100u);
  CHECK(route->fault->delay_per_million == 100000);
  CHECK(route->fault->abort_status == 503);
  CHECK(route->fault->abort_per_million == 50000);
  // weftd sets no idle timeout: Envoy's default of 1 h; the HCM's own value when set.
  CHECK((*cfg)->downstream_idle_timeout_ms() == 3600 * 1000);
  auto idle =
      ProxyConfig::Build(WithIdleTimeout(Compiled("traffic_policy", "shop", "frontend", "10.0.0.5"), 5));
  REQUIRE(idle.ok());
  CHECK((*idle)->downstream_idle_timeout_ms() == 5000);
}

// Rewrites the HCM of listener `name`'s filter chain `chain`.
template <typename Edit>
void EditHcm(XdsResources& r, const std::string& name, int chain, Edit edit) {
  envoy::config::listener::v3::Listener l;
  REQUIRE(r.by_type[kListenerType][name].resource.UnpackTo(&l));
  auto* filter = l.mutable_filter_chains(chain)->mutable_filters(0);
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  REQUIRE(filter->typed_config().UnpackTo(&hcm));
  edit(hcm);
  filter->mutable_typed_config()->PackFrom(hcm);
  r.by_type[kListenerType][name].resource.PackFrom(l);
}

TEST_CASE("weftd's sidecar config enables websocket both ways; enabled: false and idle timeouts are read",
          "[proxy][upgrade]") {
  XdsResources r = Compiled("mtls_modes", "shop", "orders", "10.0.1.1");
  auto cfg = ProxyConfig::Build(r);
  REQUIRE(cfg.ok());
  CHECK(UpgradeAllowed((*cfg)->outbound_upgrades(), nullptr, "websocket"));
  CHECK_FALSE(UpgradeAllowed((*cfg)->outbound_upgrades(), nullptr, "h2c"));
  CHECK((*cfg)->outbound_stream_idle_timeout_ms() == kDefaultStreamIdleTimeoutMs);  // weftd sets none
  const InboundPort* port = (*cfg)->Inbound(18081);
  REQUIRE(port != nullptr);
  REQUIRE(port->mtls);
  REQUIRE(port->plaintext);
  CHECK(UpgradeAllowed(port->mtls->upgrades, nullptr, "websocket"));
  CHECK(UpgradeAllowed(port->plaintext->upgrades, nullptr, "WebSocket"));

  // enabled: false on the outbound HCM, a stream_idle_timeout inbound.
  EditHcm(r, "outbound", 0,
          [](envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager& hcm) {
            hcm.mutable_upgrade_configs(0)->mutable_enabled()->set_value(false);
          });
  envoy::config::listener::v3::Listener inbound;
  REQUIRE(r.by_type[kListenerType]["inbound"].resource.UnpackTo(&inbound));
  for (int i = 0; i < inbound.filter_chains_size(); ++i) {
    EditHcm(r, "inbound", i,
            [](envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager& hcm) {
              hcm.mutable_stream_idle_timeout()->set_seconds(7);
            });
  }
  auto edited = ProxyConfig::Build(r);
  REQUIRE(edited.ok());
  CHECK((*edited)->outbound_upgrades().Find("websocket") == false);
  CHECK_FALSE(UpgradeAllowed((*edited)->outbound_upgrades(), nullptr, "websocket"));
  CHECK((*edited)->Inbound(18081)->mtls->stream_idle_timeout_ms == 7000);

  // Route idle_timeout and upgrade_configs are read; a CONNECT config NACKs the update with its place.
  envoy::config::route::v3::RouteConfiguration rc;
  REQUIRE(r.by_type[kRouteType]["outbound"].resource.UnpackTo(&rc));
  auto* action = rc.mutable_virtual_hosts(0)->mutable_routes(0)->mutable_route();
  action->mutable_idle_timeout()->set_seconds(2);
  action->add_upgrade_configs()->set_upgrade_type("websocket");
  r.by_type[kRouteType]["outbound"].resource.PackFrom(rc);
  auto with_route = ProxyConfig::Build(r);
  REQUIRE(with_route.ok());
  auto table = RouteTable::Create(rc);
  REQUIRE(table.ok());
  // The first route of the first virtual host carries both.
  bool found = false;
  for (const auto& d : rc.virtual_hosts(0).domains()) {
    const VirtualHostEntry* vh = (*table)->FindVirtualHost(d);
    if (vh == nullptr || vh->routes.empty()) continue;
    CHECK(vh->routes[0].idle_timeout_ms == 2000u);
    CHECK(UpgradeAllowed((*edited)->outbound_upgrades(), &vh->routes[0].upgrades,
                         "websocket"));  // route T wins
    found = true;
    break;
  }
  CHECK(found);
  action->mutable_upgrade_configs(0)->set_upgrade_type("CONNECT");
  action->mutable_upgrade_configs(0)->mutable_connect_config();
  r.by_type[kRouteType]["outbound"].resource.PackFrom(rc);
  auto nacked = ProxyConfig::Build(r);
  REQUIRE_FALSE(nacked.ok());
  CHECK(std::string(nacked.status().message()).find("routes[0].route.upgrade_configs[0].connect_config") !=
        std::string::npos);
}

// A free loopback TCP port (bound once, then released).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  close(fd);
  return ntohs(a.sin_port);
}

// A real ProxyServer (REGISTRY_ONLY, so a request to an unknown host gets a
// local keep-alive 502) with `cfg`: `requests` requests on a keep-alive
// connection, `pause` apart, then how many seconds after the last response
// the proxy closed the idle connection; -1 when it was still open after
// `wait_s`.
double SecondsUntilIdleClose(ProxyConfigConstSharedPtr cfg, int wait_s, int requests = 1,
                             std::chrono::milliseconds pause = {}) {
  common::MetricsRegistry metrics;
  ProxyServer::Options o;
  o.outbound_addr = absl::StrCat("127.0.0.1:", FreePort());
  o.inbound_addr = absl::StrCat("127.0.0.1:", FreePort());
  o.workers = 1;
  o.registry_only = true;
  ProxyServer server(o, metrics);
  server.SetConfig(std::move(cfg));
  REQUIRE(server.Start().ok());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port =
      htons(static_cast<uint16_t>(std::stoi(o.outbound_addr.substr(o.outbound_addr.rfind(':') + 1))));
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  timeval tv{wait_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string request = "GET / HTTP/1.1\r\nHost: nowhere.example\r\n\r\n";
  char buf[4096];
  for (int i = 0; i < requests; ++i) {
    if (i > 0) std::this_thread::sleep_for(pause);
    REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string response;
    while (!absl::StrContains(response, "(REGISTRY_ONLY)\n")) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      REQUIRE(n > 0);
      response.append(buf, static_cast<size_t>(n));
    }
    CHECK(absl::StartsWith(response, "HTTP/1.1 502"));
    CHECK_FALSE(absl::StrContains(absl::AsciiStrToLower(response), "connection: close"));
  }
  const auto t0 = std::chrono::steady_clock::now();
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  server.Stop();
  return n == 0 ? seconds : -1;
}

TEST_CASE("the outbound HCM idle timeout closes idle downstream keep-alive connections",
          "[proxy][config][idle]") {
  auto idle =
      ProxyConfig::Build(WithIdleTimeout(Compiled("traffic_policy", "shop", "frontend", "10.0.0.5"), 1));
  REQUIRE(idle.ok());
  const double closed_after = SecondsUntilIdleClose(*idle, 15);
  INFO("closed after " << closed_after << " s");
  CHECK(closed_after >= 0.8);
  CHECK(closed_after < 15);
  // What weftd emits (Envoy's default, 1 h): the idle connection stays open.
  auto plain = ProxyConfig::Build(Compiled("traffic_policy", "shop", "frontend", "10.0.0.5"));
  REQUIRE(plain.ok());
  CHECK(SecondsUntilIdleClose(*plain, 3) == -1);
}

TEST_CASE("the idle timeout runs from the end of the last request, not the first", "[proxy][config][idle]") {
  // The proxy arms one timer per connection and, when it expires during a
  // later idle period, waits out the rest of that period: a request 1.5 s
  // into a 3 s timeout must not be cut off 1.5 s after its response.
  auto idle =
      ProxyConfig::Build(WithIdleTimeout(Compiled("traffic_policy", "shop", "frontend", "10.0.0.5"), 3));
  REQUIRE(idle.ok());
  const double closed_after = SecondsUntilIdleClose(*idle, 20, 2, std::chrono::milliseconds(1500));
  INFO("closed " << closed_after << " s after the second response");
  CHECK(closed_after >= 2.4);
  CHECK(closed_after < 20);
}

TEST_CASE("resilience fields weft-proxy cannot enforce are NACKed with their place", "[proxy][config]") {
  auto resources = Compiled("traffic_policy", "shop", "frontend", "10.0.0.5");
  auto& entry = resources.by_type[kClusterType]["outbound|8080||orders.shop.svc.cluster.local"];
  envoy::config::cluster::v3::Cluster c;
  REQUIRE(entry.resource.UnpackTo(&c));
  c.mutable_outlier_detection()->mutable_enforcing_success_rate()->set_value(100);
  c.mutable_circuit_breakers()->mutable_thresholds(0)->set_priority(envoy::config::core::v3::HIGH);
  entry.resource.PackFrom(c);
  auto cfg = ProxyConfig::Build(resources);
  REQUIRE_FALSE(cfg.ok());
  const std::string msg(cfg.status().message());
  CHECK(msg.find(
            "Cluster outbound|8080||orders.shop.svc.cluster.local.circuit_breakers.thresholds[0].priority") !=
        std::string::npos);
  CHECK(
      msg.find("Cluster outbound|8080||orders.shop.svc.cluster.local.outlier_detection: the success-rate") !=
      std::string::npos);
}

}  // namespace
}  // namespace weft::proxy
