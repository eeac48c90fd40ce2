// Resolves a Service port to the addresses that serve it, from the
// EndpointSlices that name the Service and the Workloads its selector
// matches. Pure; used by the compiler.
#pragma once

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

// Ready endpoints of `port` of `service`, sorted by (zone, address, port),
// without duplicates. Terminating endpoints are left out.
std::vector<ResolvedEndpoint> ResolveEndpoints(const discovery::MeshSnapshot& mesh,
                                               const discovery::Service& service,
                                               const discovery::ServicePort& port);

}  // namespace weft::policy
