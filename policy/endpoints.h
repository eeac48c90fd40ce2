// Resolves a Service port to the addresses that serve it, from the
// EndpointSlices that name the Service and the Workloads its selector
// matches. Pure; used by the compiler.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
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

// What changes in an EndpointIndex between two snapshots that differ only in
// some Workloads, Pods and EndpointSlices: (bucket, object key) entries to
// drop and to add. Empty when the changed objects kept their labels and
// services (an address or a port moved), the most frequent change.
struct EndpointIndexDelta {
  using Entries = std::vector<std::pair<std::string, std::string>>;
  Entries workloads_removed, workloads_added;
  Entries pods_removed, pods_added;
  Entries slices_removed, slices_added;
  bool empty() const;
};

// Lookup tables over one MeshSnapshot for selecting a Service's backends:
// Workloads and Pods by (namespace, label), EndpointSlices by (namespace,
// service). Built once per snapshot (ValidatePolicies keeps it in the
// PolicySet) in O(objects), so that resolving every service of a large mesh
// costs O(services), not O(services x workloads). It holds object keys, not
// pointers, so that an endpoint change carries it over to the next snapshot
// (Updated()) instead of indexing the whole mesh again; lookups take the
// snapshot the index is of.
class EndpointIndex {
 public:
  explicit EndpointIndex(const discovery::MeshSnapshot& mesh);

  // The index of `after` from `previous`, the index of `before`, where
  // `delta` = IndexDelta(before, after, change). Shares `previous` when the
  // delta is empty; otherwise copies it and applies the delta.
  static std::shared_ptr<const EndpointIndex> Updated(const std::shared_ptr<const EndpointIndex>& previous,
                                                      const EndpointIndexDelta& delta);

  // Workloads / Pods in `ns` whose labels match a non-empty `selector`, in
  // key order. `mesh` is the snapshot the index is of.
  std::vector<const discovery::Workload*> SelectWorkloads(
      const discovery::MeshSnapshot& mesh, const std::string& ns,
      const std::map<std::string, std::string>& selector) const;
  std::vector<const discovery::Pod*> SelectPods(const discovery::MeshSnapshot& mesh, const std::string& ns,
                                                const std::map<std::string, std::string>& selector) const;
  // EndpointSlices that name `service` in `ns`, in key order.
  std::vector<const discovery::EndpointSlice*> SlicesOf(const discovery::MeshSnapshot& mesh,
                                                        const std::string& ns,
                                                        const std::string& service) const;

  // Same tables (tests).
  bool operator==(const EndpointIndex& o) const {
    return workloads_by_label_ == o.workloads_by_label_ && pods_by_label_ == o.pods_by_label_ &&
           slices_by_service_ == o.slices_by_service_;
  }

 private:
  // Bucket -> the keys (ObjectKey) of the objects in it, sorted.
  using Buckets = std::map<std::string, std::vector<std::string>>;
  Buckets workloads_by_label_;  // "ns\0k\0v"
  Buckets pods_by_label_;
  Buckets slices_by_service_;  // "ns\0svc"
};

// The EndpointIndexDelta between `before` and `after`, which differ only in
// `change`'s objects. O(change).
EndpointIndexDelta IndexDelta(const discovery::MeshSnapshot& before, const discovery::MeshSnapshot& after,
                              const discovery::EndpointChange& change);

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
