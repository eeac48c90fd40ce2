#include "policy/endpoints.h"

#include <algorithm>

namespace weft::policy {
namespace {

bool SelectorMatches(const std::map<std::string, std::string>& selector,
                     const std::map<std::string, std::string>& labels) {
  if (selector.empty()) return false;  // a Service without selector selects nothing
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

uint32_t WorkloadPort(const discovery::Workload& workload, const discovery::ServicePort& port) {
  if (auto it = workload.ports.find(port.name); it != workload.ports.end()) return it->second;
  if (!port.target_port_name.empty()) {
    auto it = workload.ports.find(port.target_port_name);
    return it == workload.ports.end() ? 0 : it->second;
  }
  if (port.target_port_number != 0) return port.target_port_number;
  return port.port;
}

namespace {

std::string LabelKey(const std::string& ns, const std::string& k, const std::string& v) {
  std::string key = ns;
  key.push_back('\0');
  key += k;
  key.push_back('\0');
  key += v;
  return key;
}

std::string ServiceKey(const std::string& ns, const std::string& service) {
  std::string key = ns;
  key.push_back('\0');
  key += service;
  return key;
}

// Candidates under the selector's rarest label, then the full match.
template <typename T>
std::vector<const T*> Select(const std::map<std::string, std::vector<const T*>>& by_label, const std::string& ns,
                             const std::map<std::string, std::string>& selector) {
  std::vector<const T*> out;
  if (selector.empty()) return out;
  const std::vector<const T*>* smallest = nullptr;
  for (const auto& [k, v] : selector) {
    auto it = by_label.find(LabelKey(ns, k, v));
    if (it == by_label.end()) return out;  // no object has this label: none matches
    if (smallest == nullptr || it->second.size() < smallest->size()) smallest = &it->second;
  }
  for (const T* candidate : *smallest) {
    if (SelectorMatches(selector, candidate->meta.labels)) out.push_back(candidate);
  }
  return out;
}

void AddWorkloadEndpoint(const discovery::Workload& workload, const discovery::ServicePort& port,
                         std::vector<ResolvedEndpoint>& out) {
  uint32_t p = WorkloadPort(workload, port);
  if (p == 0 || workload.address.empty()) return;
  std::string zone;
  if (auto it = workload.meta.labels.find("topology.kubernetes.io/zone"); it != workload.meta.labels.end()) {
    zone = it->second;
  }
  out.push_back({workload.address, p, zone, true, workload.meta.source.ToString()});
}

void AddSliceEndpoints(const discovery::EndpointSlice& slice, const discovery::ServicePort& port,
                       std::vector<ResolvedEndpoint>& out) {
  const discovery::EndpointPort* slice_port = nullptr;
  for (const auto& p : slice.ports) {
    if (p.name == port.name) slice_port = &p;
  }
  if (slice_port == nullptr || slice_port->port == 0) return;
  for (const auto& ep : slice.endpoints) {
    if (!ep.ready || ep.terminating) continue;
    for (const auto& address : ep.addresses) {
      out.push_back({address, slice_port->port, ep.zone, true, slice.meta.source.ToString()});
    }
  }
}

}  // namespace

EndpointIndex::EndpointIndex(const discovery::MeshSnapshot& mesh) {
  for (const auto& [key, w] : mesh.workloads) {
    for (const auto& [k, v] : w.meta.labels) workloads_by_label_[LabelKey(w.meta.namespace_, k, v)].push_back(&w);
  }
  for (const auto& [key, pod] : mesh.pods) {
    for (const auto& [k, v] : pod.meta.labels) pods_by_label_[LabelKey(pod.meta.namespace_, k, v)].push_back(&pod);
  }
  for (const auto& [key, slice] : mesh.endpoint_slices) {
    slices_by_service_[ServiceKey(slice.meta.namespace_, slice.service_name)].push_back(&slice);
  }
}

std::vector<const discovery::Workload*> EndpointIndex::SelectWorkloads(
    const std::string& ns, const std::map<std::string, std::string>& selector) const {
  return Select(workloads_by_label_, ns, selector);
}

std::vector<const discovery::Pod*> EndpointIndex::SelectPods(
    const std::string& ns, const std::map<std::string, std::string>& selector) const {
  return Select(pods_by_label_, ns, selector);
}

const std::vector<const discovery::EndpointSlice*>& EndpointIndex::SlicesOf(const std::string& ns,
                                                                           const std::string& service) const {
  static const std::vector<const discovery::EndpointSlice*> kNone;
  auto it = slices_by_service_.find(ServiceKey(ns, service));
  return it == slices_by_service_.end() ? kNone : it->second;
}

std::vector<ResolvedEndpoint> ResolveEndpoints(const discovery::MeshSnapshot& mesh,
                                               const discovery::Service& service,
                                               const discovery::ServicePort& port, const EndpointIndex* index) {
  std::vector<ResolvedEndpoint> out;
  const std::string& ns = service.meta.namespace_;
  if (index != nullptr) {
    for (const auto* slice : index->SlicesOf(ns, service.meta.name)) AddSliceEndpoints(*slice, port, out);
    for (const auto* workload : index->SelectWorkloads(ns, service.selector)) {
      AddWorkloadEndpoint(*workload, port, out);
    }
  } else {
    for (const auto& [key, slice] : mesh.endpoint_slices) {
      if (slice.meta.namespace_ == ns && slice.service_name == service.meta.name) AddSliceEndpoints(slice, port, out);
    }
    for (const auto& [key, workload] : mesh.workloads) {
      if (workload.meta.namespace_ == ns && SelectorMatches(service.selector, workload.meta.labels)) {
        AddWorkloadEndpoint(workload, port, out);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end(),
                        [](const ResolvedEndpoint& a, const ResolvedEndpoint& b) {
                          return a.zone == b.zone && a.address == b.address && a.port == b.port;
                        }),
            out.end());
  return out;
}

}  // namespace weft::policy
