#include "policy/incremental.h"

#include <memory>

#include "policy/cluster_builder.h"
#include "policy/endpoints.h"

namespace weft::policy {
namespace {

// Services of `ns` whose selector picks an object with `labels`.
void AddSelecting(const discovery::MeshSnapshot& mesh, const std::string& ns,
                  const std::map<std::string, std::string>& labels, std::set<std::string>& out) {
  for (const auto& [key, service] : mesh.services) {
    if (service.meta.namespace_ == ns && !service.selector.empty() && LabelsMatch(service.selector, labels)) {
      out.insert(key);
    }
  }
}

// Services whose EndpointSlices name the Pod `ns`/`pod` as an endpoint's
// target (its service account is one of theirs).
void AddNamingPod(const discovery::MeshSnapshot& mesh, const std::string& ns, const std::string& pod,
                  std::set<std::string>& out) {
  for (const auto& [key, slice] : mesh.endpoint_slices) {
    if (slice.meta.namespace_ != ns) continue;
    for (const auto& ep : slice.endpoints) {
      if (ep.target_pod == pod) out.insert(discovery::ObjectKey(ns, slice.service_name));
    }
  }
}

template <typename T>
const T* Find(const std::map<std::string, T>& objects, const std::string& key) {
  auto it = objects.find(key);
  return it == objects.end() ? nullptr : &it->second;
}

}  // namespace

bool EndpointImpact::AffectsWhole(const ProxyIdentity& proxy) const {
  return proxy.kind == ProxyIdentity::Kind::kSidecar && !proxy.ip.empty() && addresses.count(proxy.ip) > 0;
}

EndpointImpact ImpactOf(const discovery::MeshSnapshot& before, const discovery::MeshSnapshot& after,
                        const discovery::EndpointChange& change) {
  EndpointImpact impact;
  for (const discovery::MeshSnapshot* mesh : {&before, &after}) {
    for (const auto& key : change.workloads) {
      if (const auto* w = Find(mesh->workloads, key)) {
        impact.addresses.insert(w->address);
        AddSelecting(*mesh, w->meta.namespace_, w->meta.labels, impact.services);
      }
    }
    for (const auto& key : change.pods) {
      if (const auto* pod = Find(mesh->pods, key)) {
        impact.addresses.insert(pod->pod_ip);
        AddSelecting(*mesh, pod->meta.namespace_, pod->meta.labels, impact.services);
        // The slices of the snapshot it is in (a slice that changed is
        // counted below, whichever side names the pod).
        AddNamingPod(*mesh, pod->meta.namespace_, pod->meta.name, impact.services);
      }
    }
    for (const auto& key : change.endpoint_slices) {
      if (const auto* slice = Find(mesh->endpoint_slices, key)) {
        impact.services.insert(discovery::ObjectKey(slice->meta.namespace_, slice->service_name));
        for (const auto& ep : slice->endpoints)
          impact.addresses.insert(ep.addresses.begin(), ep.addresses.end());
      }
    }
  }
  impact.addresses.erase("");
  impact.index_delta = IndexDelta(before, after, change);
  return impact;
}

PolicySetConstSharedPtr CarryOverPolicies(const PolicySet& previous, const discovery::MeshSnapshot& after,
                                          const EndpointImpact& impact, const CompilerOptions& options) {
  auto set = std::make_shared<PolicySet>(previous);
  set->snapshot_version = after.version;
  set->endpoint_index = previous.endpoint_index != nullptr
                            ? EndpointIndex::Updated(previous.endpoint_index, impact.index_delta)
                            : std::make_shared<EndpointIndex>(after);
  if (previous.shared != nullptr) UpdateShared(after, *set, options, *previous.shared, impact.services);
  return set;
}

ProxyResources CompileImpactedClusters(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                                       const ProxyIdentity& proxy, const EndpointImpact& impact,
                                       const CompilerOptions& options) {
  const ClusterFlavor flavor =
      proxy.kind == ProxyIdentity::Kind::kSidecar ? ClusterFlavor::kSidecar : ClusterFlavor::kProxyless;
  ProxyResources out;
  for (const auto& key : impact.services) {
    auto it = mesh.services.find(key);
    if (it == mesh.services.end()) continue;
    for (const auto& port : it->second.ports)
      AddOutboundCluster(mesh, policies, it->second, port, options, flavor, out);
  }
  return out;
}

}  // namespace weft::policy
