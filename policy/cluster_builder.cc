#include "policy/cluster_builder.h"

#include <algorithm>
#include <optional>

#include <set>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "policy/compiler.h"
#include "policy/endpoints.h"
#include "policy/resource_types.h"

namespace weft::policy {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;

void SetAds(envoy::config::core::v3::ConfigSource& source) {
  source.mutable_ads();
  source.set_resource_api_version(envoy::config::core::v3::V3);
}

void SetDuration(google::protobuf::Duration& d, int64_t ms) {
  d.set_seconds(ms / 1000);
  d.set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

void SetSdsSecret(envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig& sds, const char* name) {
  sds.set_name(name);
  SetAds(*sds.mutable_sds_config());
}

void ApplyTrafficPolicy(const TrafficPolicy& tp, Cluster& cluster) {
  if (tp.load_balancer) {
    switch (*tp.load_balancer) {
      case LoadBalancerType::kRoundRobin: cluster.set_lb_policy(Cluster::ROUND_ROBIN); break;
      case LoadBalancerType::kLeastRequest: cluster.set_lb_policy(Cluster::LEAST_REQUEST); break;
      case LoadBalancerType::kRandom: cluster.set_lb_policy(Cluster::RANDOM); break;
      case LoadBalancerType::kRingHash: cluster.set_lb_policy(Cluster::RING_HASH); break;
    }
  }
  if (tp.connection_limits) {
    auto* t = cluster.mutable_circuit_breakers()->add_thresholds();
    const auto& cl = *tp.connection_limits;
    if (cl.max_connections) t->mutable_max_connections()->set_value(*cl.max_connections);
    if (cl.max_pending_requests) t->mutable_max_pending_requests()->set_value(*cl.max_pending_requests);
    if (cl.max_requests) t->mutable_max_requests()->set_value(*cl.max_requests);
    if (cl.max_retries) t->mutable_max_retries()->set_value(*cl.max_retries);
    if (cl.retry_budget) {
      auto* budget = t->mutable_retry_budget();
      if (cl.retry_budget->percent) budget->mutable_budget_percent()->set_value(*cl.retry_budget->percent);
      if (cl.retry_budget->min_retry_concurrency) {
        budget->mutable_min_retry_concurrency()->set_value(*cl.retry_budget->min_retry_concurrency);
      }
    }
  }
  if (tp.outlier_detection) {
    auto* od = cluster.mutable_outlier_detection();
    const auto& o = *tp.outlier_detection;
    if (o.consecutive_5xx) od->mutable_consecutive_5xx()->set_value(*o.consecutive_5xx);
    if (o.consecutive_gateway_errors) {
      od->mutable_consecutive_gateway_failure()->set_value(*o.consecutive_gateway_errors);
      // Envoy enforces gateway failures at 0% unless told otherwise.
      od->mutable_enforcing_consecutive_gateway_failure()->set_value(100);
    }
    if (o.interval_ms) SetDuration(*od->mutable_interval(), *o.interval_ms);
    if (o.base_ejection_time_ms) SetDuration(*od->mutable_base_ejection_time(), *o.base_ejection_time_ms);
    if (o.max_ejection_percent) od->mutable_max_ejection_percent()->set_value(*o.max_ejection_percent);
  }
}

ClusterLoadAssignment BuildLoadAssignment(const discovery::MeshSnapshot& mesh, const discovery::Service& service,
                                          const discovery::ServicePort& port, const std::string& cluster_name,
                                          const EndpointIndex* index, std::vector<std::string>& sources) {
  ClusterLoadAssignment cla;
  cla.set_cluster_name(cluster_name);
  std::set<std::string> seen_sources(sources.begin(), sources.end());
  envoy::config::endpoint::v3::LocalityLbEndpoints* locality = nullptr;
  std::string current_zone;
  for (const auto& ep : ResolveEndpoints(mesh, service, port, index)) {
    if (locality == nullptr || ep.zone != current_zone) {
      locality = cla.add_endpoints();
      current_zone = ep.zone;
      // gRPC rejects a locality entry without the locality field.
      auto* where = locality->mutable_locality();
      if (!ep.zone.empty()) where->set_zone(ep.zone);
      locality->mutable_load_balancing_weight()->set_value(0);
    }
    auto* lb = locality->add_lb_endpoints();
    auto* addr = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    addr->set_address(ep.address);
    addr->set_port_value(ep.port);
    lb->set_health_status(envoy::config::core::v3::HEALTHY);
    lb->mutable_load_balancing_weight()->set_value(1);
    // gRPC ignores a locality without a weight; weigh each by its endpoint
    // count so every endpoint gets an equal share.
    locality->mutable_load_balancing_weight()->set_value(locality->load_balancing_weight().value() + 1);
    if (seen_sources.insert(ep.source).second) sources.push_back(ep.source);
  }
  return cla;
}

void BuildClusterPair(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                      const discovery::Service& service, const discovery::ServicePort& port,
                      const CompilerOptions& options, ClusterFlavor flavor, Resource& cluster_out,
                      Resource& endpoints_out) {
  const std::string host = ServiceHost(service, options);
  const std::string cluster_name = OutboundClusterName(port.port, "", host);
  std::vector<std::string> sources = {service.meta.source.ToString()};

  Cluster cluster;
  cluster.set_name(cluster_name);
  cluster.set_type(Cluster::EDS);
  SetAds(*cluster.mutable_eds_cluster_config()->mutable_eds_config());
  cluster.mutable_eds_cluster_config()->set_service_name(cluster_name);
  cluster.set_lb_policy(Cluster::ROUND_ROBIN);
  cluster.mutable_connect_timeout()->set_seconds(10);
  if (const TrafficPolicy* tp = TrafficPolicyForService(policies, service)) {
    ApplyTrafficPolicy(*tp, cluster);
    sources.push_back(tp->meta.source);
  }
  if (flavor == ClusterFlavor::kSidecar && ServiceMtlsMode(policies, service) != MtlsMode::kDisable) {
    envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
    tls.set_sni(host);
    auto* common = tls.mutable_common_tls_context();
    SetSdsSecret(*common->add_tls_certificate_sds_secret_configs(), kWorkloadCertSecret);
    auto* combined = common->mutable_combined_validation_context();
    for (const auto& id : ServiceIdentities(mesh, service, options, policies.endpoint_index.get())) {
      auto* san = combined->mutable_default_validation_context()->add_match_typed_subject_alt_names();
      san->set_san_type(envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher::URI);
      san->mutable_matcher()->set_exact(id);
    }
    combined->mutable_default_validation_context();
    SetSdsSecret(*combined->mutable_validation_context_sds_secret_config(), kRootCaSecret);
    auto* socket = cluster.mutable_transport_socket();
    socket->set_name("envoy.transport_sockets.tls");
    PackDeterministic(tls, *socket->mutable_typed_config());
  }
  ProxyResources scratch;
  scratch.Add(cluster, cluster_name, sources);
  std::vector<std::string> eds_sources = {service.meta.source.ToString()};
  auto cla = BuildLoadAssignment(mesh, service, port, cluster_name, policies.endpoint_index.get(), eds_sources);
  scratch.Add(cla, cluster_name, std::move(eds_sources));
  cluster_out = scratch.resources.at(std::string(kClusterType)).at(cluster_name);
  endpoints_out = scratch.resources.at(std::string(kEndpointType)).at(cluster_name);
}

}  // namespace

std::vector<std::string> ServiceIdentities(const discovery::MeshSnapshot& mesh, const discovery::Service& service,
                                           const CompilerOptions& options, const EndpointIndex* index) {
  std::optional<EndpointIndex> local;
  if (index == nullptr) index = &local.emplace(mesh);
  std::set<std::string> accounts;
  const std::string& ns = service.meta.namespace_;
  if (!service.selector.empty()) {
    for (const auto* w : index->SelectWorkloads(mesh, ns, service.selector)) accounts.insert(w->service_account);
    for (const auto* pod : index->SelectPods(mesh, ns, service.selector)) accounts.insert(pod->service_account);
  }
  for (const auto* slice_ptr : index->SlicesOf(mesh, ns, service.meta.name)) {
    const discovery::EndpointSlice& slice = *slice_ptr;
    for (const auto& ep : slice.endpoints) {
      if (ep.target_pod.empty()) continue;
      auto it = mesh.pods.find(discovery::ObjectKey(ns, ep.target_pod));
      if (it != mesh.pods.end()) accounts.insert(it->second.service_account);
    }
  }
  std::vector<std::string> out;
  for (const auto& sa : accounts) {
    out.push_back(absl::StrCat("spiffe://", options.trust_domain, "/ns/", ns, "/sa/", sa));
  }
  return out;
}

MtlsMode ServiceMtlsMode(const PolicySet& policies, const discovery::Service& service) {
  return MtlsModeFor(policies, service.meta.namespace_, service.selector);
}

void AddOutboundCluster(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                        const discovery::Service& service, const discovery::ServicePort& port,
                        const CompilerOptions& options, ClusterFlavor flavor, ProxyResources& out) {
  const std::string name = OutboundClusterName(port.port, "", ServiceHost(service, options));
  if (flavor == ClusterFlavor::kSidecar && policies.shared != nullptr &&
      policies.snapshot_version == mesh.version) {
    if (const SharedResources::ClusterPair* pair = policies.shared->Find(name)) {
      static const std::string kClusters(kClusterType), kEndpoints(kEndpointType);
      out.resources[kClusters].emplace_hint(out.resources[kClusters].end(), name, pair->cluster);
      out.resources[kEndpoints].emplace_hint(out.resources[kEndpoints].end(), name, pair->endpoints);
      return;
    }
  }
  Resource cluster, endpoints;
  BuildClusterPair(mesh, policies, service, port, options, flavor, cluster, endpoints);
  out.resources[std::string(kClusterType)][name] = std::move(cluster);
  out.resources[std::string(kEndpointType)][name] = std::move(endpoints);
}

namespace {

void BuildSharedPorts(const discovery::MeshSnapshot& mesh, const PolicySet& set, const discovery::Service& service,
                      const CompilerOptions& options, SharedResources::Pairs& pairs) {
  for (const auto& port : service.ports) {
    const std::string name = OutboundClusterName(port.port, "", ServiceHost(service, options));
    auto pair = std::make_shared<SharedResources::ClusterPair>();
    BuildClusterPair(mesh, set, service, port, options, ClusterFlavor::kSidecar, pair->cluster, pair->endpoints);
    pairs[name] = std::move(pair);
  }
}

}  // namespace

const SharedResources::ClusterPair* SharedResources::Find(const std::string& cluster_name) const {
  if (auto it = recent.find(cluster_name); it != recent.end()) return it->second.get();
  if (base == nullptr) return nullptr;
  auto it = base->find(cluster_name);
  return it == base->end() ? nullptr : it->second.get();
}

void PrecompileShared(const discovery::MeshSnapshot& mesh, PolicySet& set, const CompilerOptions& options) {
  auto pairs = std::make_shared<SharedResources::Pairs>();
  for (const auto& [key, service] : mesh.services) BuildSharedPorts(mesh, set, service, options, *pairs);
  auto shared = std::make_shared<SharedResources>();
  shared->base = std::move(pairs);
  set.shared = std::move(shared);
}

void UpdateShared(const discovery::MeshSnapshot& mesh, PolicySet& set, const CompilerOptions& options,
                  const SharedResources& previous, const std::set<std::string>& services) {
  auto shared = std::make_shared<SharedResources>(previous);  // shares `base`, copies `recent`
  for (const auto& key : services) {
    if (auto it = mesh.services.find(key); it != mesh.services.end()) {
      BuildSharedPorts(mesh, set, it->second, options, shared->recent);
    }
  }
  // Merging costs a copy of the whole table: once per many changes.
  const size_t base_size = shared->base == nullptr ? 0 : shared->base->size();
  if (shared->recent.size() > std::max<size_t>(16, base_size / 16)) {
    auto merged = shared->base == nullptr ? std::make_shared<SharedResources::Pairs>()
                                          : std::make_shared<SharedResources::Pairs>(*shared->base);
    for (auto& [name, pair] : shared->recent) (*merged)[name] = std::move(pair);
    shared->base = std::move(merged);
    shared->recent.clear();
  }
  set.shared = std::move(shared);
}

}  // namespace weft::policy
