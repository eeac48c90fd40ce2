#include "tests/testing/pgv_checker.h"

#include <catch2/catch.hpp>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace weft::testing {
namespace {

bool Has(const PgvResult& r, const std::string& needle) {
  for (const auto& v : r.violations) {
    if (v.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("PGV: a valid route configuration passes", "[pgv]") {
  envoy::config::route::v3::RouteConfiguration rc;
  rc.set_name("r");
  auto* vh = rc.add_virtual_hosts();
  vh->set_name("vh");
  vh->add_domains("*");
  auto* route = vh->add_routes();
  route->mutable_match()->set_prefix("/");
  route->mutable_route()->set_cluster("c");
  auto result = CheckPgv(rc);
  CAPTURE(result.violations);
  CHECK(result.ok());
}

TEST_CASE("PGV: required oneofs, min_len, min_items, header names and enums are enforced", "[pgv]") {
  envoy::config::route::v3::RouteConfiguration rc;
  auto* vh = rc.add_virtual_hosts();  // no name, no domains
  auto* route = vh->add_routes();     // no match path, no action
  auto* h = route->mutable_match()->add_headers();
  h->set_name("bad\nheader");
  auto* wc = vh->add_routes()->mutable_route()->mutable_weighted_clusters();
  wc->add_clusters();  // a cluster without a name
  auto result = CheckPgv(rc);
  CAPTURE(result.violations);
  CHECK(Has(result, "virtual_hosts[0].name: length must be at least 1"));
  CHECK(Has(result, "virtual_hosts[0].domains: must have at least 1 items"));
  CHECK(Has(result, "virtual_hosts[0].routes[0].action: one of the oneof's fields is required"));
  CHECK(Has(result, "virtual_hosts[0].routes[0].match.path_specifier: one of the oneof's fields is required"));
  CHECK(Has(result, "virtual_hosts[0].routes[0].match.headers[0].name: must be a valid HTTP header name"));

  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name("c");
  cluster.set_lb_policy(static_cast<envoy::config::cluster::v3::Cluster::LbPolicy>(77));
  cluster.mutable_connect_timeout()->set_seconds(-1);
  auto cr = CheckPgv(cluster);
  CAPTURE(cr.violations);
  CHECK(Has(cr, "lb_policy: must be a defined enum value"));
  CHECK(Has(cr, "connect_timeout: must be > 0ns"));
}

TEST_CASE("PGV: rules inside Any payloads are checked too", "[pgv]") {
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  // stat_prefix is required (min_len 1); the route specifier oneof too.
  envoy::config::listener::v3::Listener listener;
  listener.set_name("l");
  listener.add_filter_chains()->add_filters()->mutable_typed_config()->PackFrom(hcm);
  auto result = CheckPgv(listener);
  CAPTURE(result.violations);
  CHECK(Has(result, "typed_config<envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager>.stat_prefix"));
  google::protobuf::Any unknown;
  unknown.set_type_url("type.googleapis.com/example.Unknown");
  auto* f = listener.add_listener_filters();
  f->set_name("x");
  *f->mutable_typed_config() = unknown;
  CHECK(CheckPgv(listener).unknown_anys == std::vector<std::string>{"type.googleapis.com/example.Unknown"});
}

}  // namespace
}  // namespace weft::testing
