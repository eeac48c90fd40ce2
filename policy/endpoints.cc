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

uint32_t WorkloadPort(const discovery::Workload& workload, const discovery::ServicePort& port) {
  if (auto it = workload.ports.find(port.name); it != workload.ports.end()) return it->second;
  if (!port.target_port_name.empty()) {
    auto it = workload.ports.find(port.target_port_name);
    return it == workload.ports.end() ? 0 : it->second;
  }
  if (port.target_port_number != 0) return port.target_port_number;
  return port.port;
}

}  // namespace

std::vector<ResolvedEndpoint> ResolveEndpoints(const discovery::MeshSnapshot& mesh,
                                               const discovery::Service& service,
                                               const discovery::ServicePort& port) {
  std::vector<ResolvedEndpoint> out;
  for (const auto& [key, slice] : mesh.endpoint_slices) {
    if (slice.meta.namespace_ != service.meta.namespace_ || slice.service_name != service.meta.name) {
      continue;
    }
    const discovery::EndpointPort* slice_port = nullptr;
    for (const auto& p : slice.ports) {
      if (p.name == port.name) slice_port = &p;
    }
    if (slice_port == nullptr || slice_port->port == 0) continue;
    for (const auto& ep : slice.endpoints) {
      if (!ep.ready || ep.terminating) continue;
      for (const auto& address : ep.addresses) {
        out.push_back({address, slice_port->port, ep.zone, true, slice.meta.source.ToString()});
      }
    }
  }
  for (const auto& [key, workload] : mesh.workloads) {
    if (workload.meta.namespace_ != service.meta.namespace_) continue;
    if (!SelectorMatches(service.selector, workload.meta.labels)) continue;
    uint32_t p = WorkloadPort(workload, port);
    if (p == 0 || workload.address.empty()) continue;
    std::string zone;
    if (auto it = workload.meta.labels.find("topology.kubernetes.io/zone");
        it != workload.meta.labels.end()) {
      zone = it->second;
    }
    out.push_back({workload.address, p, zone, true, workload.meta.source.ToString()});
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
