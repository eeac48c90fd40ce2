// The configuration weft-proxy runs on: one immutable snapshot built from
// the xDS resources it holds (Listeners "outbound" and "inbound",
// RouteConfigurations, Clusters, ClusterLoadAssignments and the Secret
// "ROOTCA"), validated as a whole before it replaces the previous one. The
// xDS client builds it for every update (NACKing the update when Build
// fails); the data path reads the current one through a shared pointer.
// docs/proxy.md lists the subset of Envoy's API that is understood.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "google/protobuf/any.pb.h"
#include "proxy/circuit_breaker.h"
#include "proxy/fault_filter.h"
#include "proxy/load_balancer.h"
#include "proxy/local_rate_limit.h"
#include "proxy/outlier_detector.h"
#include "proxy/rbac_filter.h"
#include "proxy/route_table.h"
#include "proxy/upgrade_policy.h"

namespace weft::proxy {

// What the xDS client holds: type URL → resource name → resource, plus each
// resource's version.
struct XdsResources {
  struct Entry {
    google::protobuf::Any resource;
    std::string version;
  };
  std::map<std::string, std::map<std::string, Entry>> by_type;

  const std::map<std::string, Entry>* Type(const std::string& type_url) const;
};

struct EndpointAddress {
  std::string ip;
  uint32_t port = 0;
  std::string Key() const;  // "ip:port"
};

struct ClusterEntry {
  std::string name;
  bool eds = true;
  LbPolicy lb = LbPolicy::kRoundRobin;
  uint64_t connect_timeout_ms = 10000;
  // Upstream mTLS (UpstreamTlsContext with the SDS "default" certificate).
  bool tls = false;
  std::string sni;
  std::vector<std::string> expected_sans;  // exact URI SANs; empty: any mesh certificate
  std::vector<EndpointAddress> static_endpoints;  // STATIC clusters
  CircuitBreakerThresholds breakers;              // circuit_breakers (Envoy's defaults when absent)
  std::optional<OutlierConfig> outlier;           // outlier_detection
  // Pooled connections idle longer are closed (Envoy's default pool idle
  // timeout, 1 h; weftd sets no upstream HttpProtocolOptions).
  uint64_t idle_timeout_ms = 3600 * 1000;
};

// Envoy's default HCM stream_idle_timeout.
inline constexpr uint64_t kDefaultStreamIdleTimeoutMs = 300 * 1000;

// One enforced HTTP filter of an inbound chain; the data path runs them in
// the chain's order (weftd: RBAC deny, RBAC allow, local rate limit).
struct InboundHttpFilter {
  std::string name;
  RbacFilterConfigConstSharedPtr rbac;              // envoy.filters.http.rbac
  LocalRateLimitConfigConstSharedPtr rate_limit;    // envoy.filters.http.local_ratelimit
};

// The HTTP filter registry of the inbound side: compiles one HttpFilter of
// an inbound HttpConnectionManager. nullopt for filters with nothing to do
// on inbound (router, fault) and for those weft-proxy does not know (the
// caller fails closed on those); an error for a known filter whose config it
// cannot enforce as given (the update is NACKed).
absl::StatusOr<std::optional<InboundHttpFilter>> CreateInboundHttpFilter(
    const envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter& filter, bool& known);

// One filter chain of the inbound listener.
struct InboundChain {
  std::string name;
  bool tls = false;
  bool require_client_certificate = true;
  bool set_client_cert_header = false;  // forward_client_cert_details SANITIZE_SET
  std::vector<InboundHttpFilter> filters;
  // HTTP filters weft-proxy does not know are listed here; the proxy then
  // refuses requests on the chain (fail closed) rather than let them
  // through unchecked.
  std::vector<std::string> unenforced_filters;
  RouteTableConstSharedPtr routes;
  // The HCM's upgrade_configs and stream_idle_timeout (Envoy's default 5 min; 0 disables), which bounds a
  // tunnel's idle time unless the route sets idle_timeout.
  UpgradePolicy upgrades;
  uint64_t stream_idle_timeout_ms = kDefaultStreamIdleTimeoutMs;
};

struct InboundPort {
  std::optional<InboundChain> mtls;       // transport_protocol "tls"
  std::optional<InboundChain> plaintext;  // raw_buffer or no transport match
};

class ProxyConfig;
using ProxyConfigConstSharedPtr = std::shared_ptr<const ProxyConfig>;

class ProxyConfig {
 public:
  // Validates every resource and their consistency that the data path needs.
  // Missing references (a route naming a cluster not yet received) are not
  // errors: the request gets 503 (Envoy does the same while warming).
  static absl::StatusOr<ProxyConfigConstSharedPtr> Build(XdsResources resources);

  const ClusterEntry* FindCluster(const std::string& name) const;
  const std::vector<EndpointAddress>* Endpoints(const std::string& cluster) const;
  // The cluster an endpoint "ip:port" belongs to (mesh endpoints), or null.
  const ClusterEntry* ClusterOfEndpoint(const std::string& key) const;
  const InboundPort* Inbound(uint32_t port) const;

  RouteTableConstSharedPtr outbound_routes() const { return outbound_routes_; }
  bool has_outbound_listener() const { return has_outbound_; }
  bool has_inbound_listener() const { return has_inbound_; }
  // The outbound HCM's envoy.filters.http.fault config (routes may override it); null when inert.
  const FaultConfigConstSharedPtr& outbound_fault() const { return outbound_fault_; }
  // The outbound HCM's common_http_protocol_options.idle_timeout (Envoy's default 1 h; 0 disables).
  uint64_t downstream_idle_timeout_ms() const { return downstream_idle_timeout_ms_; }
  // The outbound HCM's upgrade_configs and stream_idle_timeout (see InboundChain).
  const UpgradePolicy& outbound_upgrades() const { return outbound_upgrades_; }
  uint64_t outbound_stream_idle_timeout_ms() const { return outbound_stream_idle_timeout_ms_; }
  // The ROOTCA secret's trusted CA, when the server sent one.
  const std::string& root_ca_pem() const { return root_ca_pem_; }
  const XdsResources& resources() const { return resources_; }

 private:
  XdsResources resources_;
  bool has_outbound_ = false;
  bool has_inbound_ = false;
  std::string outbound_rds_name_;
  RouteTableConstSharedPtr outbound_routes_;
  FaultConfigConstSharedPtr outbound_fault_;
  uint64_t downstream_idle_timeout_ms_ = 3600 * 1000;
  UpgradePolicy outbound_upgrades_;
  uint64_t outbound_stream_idle_timeout_ms_ = kDefaultStreamIdleTimeoutMs;
  std::map<std::string, ClusterEntry> clusters_;
  std::map<std::string, std::vector<EndpointAddress>> endpoints_;
  std::map<std::string, std::string> endpoint_cluster_;
  std::map<uint32_t, InboundPort> inbound_;
  std::string root_ca_pem_;
};

// Type URLs weft-proxy subscribes to, in the order it applies them.
inline constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kEndpointType[] = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteType[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr char kSecretType[] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

// "cds", "eds", ... for logs and metrics.
std::string ShortType(const std::string& type_url);

// The RDS names the listeners reference and the EDS names the clusters
// reference (what a state-of-the-world client subscribes to).
std::vector<std::string> ReferencedRouteNames(const XdsResources& resources);
std::vector<std::string> ReferencedEndpointNames(const XdsResources& resources);

}  // namespace weft::proxy
