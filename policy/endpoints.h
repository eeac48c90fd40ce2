// Resolves a Service port to the addresses that serve it, from the
// EndpointSlices that name the Service and the Workloads its selector
// matches. Pure; used by the compiler.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "discovery/mesh_snapshot.h"

namespace weft::policy {

struct ResolvedEndpoint {
  std::string address;
  uint32_t port = 0;
  std::string zone;
  bool ready = true;
  std::string source;  // SourceRef string of the slice or Workload
  bool operator<(const ResolvedEndpoint& o) const {
    return std::tie(zone, address, port) < std::tie(o.zone, o.address, o.port);
  }
};

// Lookup tables over one MeshSnapshot for selecting a Service's backends:
// Workloads and Pods by (namespace, label), EndpointSlices by (namespace,
// service). Built once per snapshot (ValidatePolicies keeps it in the
// PolicySet) in O(objects), so that resolving every service of a large mesh
// costs O(services), not O(services x workloads).
class EndpointIndex {
 public:
  explicit EndpointIndex(const discovery::MeshSnapshot& mesh);

  // Workloads / Pods in `ns` whose labels match a non-empty `selector`.
  std::vector<const discovery::Workload*> SelectWorkloads(
      const std::string& ns, const std::map<std::string, std::string>& selector) const;
  std::vector<const discovery::Pod*> SelectPods(const std::string& ns,
                                                const std::map<std::string, std::string>& selector) const;
  // EndpointSlices that name `service` in `ns`.
  const std::vector<const discovery::EndpointSlice*>& SlicesOf(const std::string& ns,
                                                               const std::string& service) const;

 private:
  std::map<std::string, std::vector<const discovery::Workload*>> workloads_by_label_;  // "ns\0k\0v"
  std::map<std::string, std::vector<const discovery::Pod*>> pods_by_label_;
  std::map<std::string, std::vector<const discovery::EndpointSlice*>> slices_by_service_;  // "ns\0svc"
};

// Ready endpoints of `port` of `service`, sorted by (zone, address, port),
// without duplicates. Terminating endpoints are left out. With an `index`
// of the same snapshot the lookup is O(matches); without, O(mesh).
std::vector<ResolvedEndpoint> ResolveEndpoints(const discovery::MeshSnapshot& mesh,
                                               const discovery::Service& service,
                                               const discovery::ServicePort& port,
                                               const EndpointIndex* index = nullptr);

// The port a Workload serves a Service port on: its `ports` entry for the
// port's name (or target port name), else the numeric target port, else the
// port itself; 0 when a named target port is missing.
uint32_t WorkloadPort(const discovery::Workload& workload, const discovery::ServicePort& port);

}  // namespace weft::policy
