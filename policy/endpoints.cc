#include "policy/endpoints.h"

#include <algorithm>
#include <cassert>

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
std::vector<const T*> Select(const std::map<std::string, T>& objects,
                             const std::map<std::string, std::vector<std::string>>& by_label,
                             const std::string& ns, const std::map<std::string, std::string>& selector) {
  std::vector<const T*> out;
  if (selector.empty()) return out;
  const std::vector<std::string>* smallest = nullptr;
  for (const auto& [k, v] : selector) {
    auto it = by_label.find(LabelKey(ns, k, v));
    if (it == by_label.end()) return out;  // no object has this label: none matches
    if (smallest == nullptr || it->second.size() < smallest->size()) smallest = &it->second;
  }
  for (const std::string& key : *smallest) {
    auto it = objects.find(key);
    assert(it != objects.end() && "EndpointIndex used with a snapshot it is not of");
    if (it != objects.end() && SelectorMatches(selector, it->second.meta.labels)) out.push_back(&it->second);
  }
  return out;
}

void Insert(std::map<std::string, std::vector<std::string>>& buckets, const std::string& bucket,
            const std::string& key) {
  std::vector<std::string>& keys = buckets[bucket];
  auto it = std::lower_bound(keys.begin(), keys.end(), key);
  if (it == keys.end() || *it != key) keys.insert(it, key);
}

void Erase(std::map<std::string, std::vector<std::string>>& buckets, const std::string& bucket,
           const std::string& key) {
  auto b = buckets.find(bucket);
  if (b == buckets.end()) return;
  auto it = std::lower_bound(b->second.begin(), b->second.end(), key);
  if (it != b->second.end() && *it == key) b->second.erase(it);
  if (b->second.empty()) buckets.erase(b);
}

// The label buckets of one labelled object that differ between its version
// before and after (null: absent on that side).
template <typename T>
void DiffLabels(const std::string& key, const T* before, const T* after, EndpointIndexDelta::Entries& removed,
                EndpointIndexDelta::Entries& added) {
  static const std::map<std::string, std::string> kNone;
  const auto& old_labels = before == nullptr ? kNone : before->meta.labels;
  const auto& new_labels = after == nullptr ? kNone : after->meta.labels;
  if (before != nullptr && after != nullptr && before->meta.namespace_ == after->meta.namespace_ &&
      old_labels == new_labels) {
    return;
  }
  if (before != nullptr) {
    for (const auto& [k, v] : old_labels) removed.emplace_back(LabelKey(before->meta.namespace_, k, v), key);
  }
  if (after != nullptr) {
    for (const auto& [k, v] : new_labels) added.emplace_back(LabelKey(after->meta.namespace_, k, v), key);
  }
}

template <typename T>
const T* Find(const std::map<std::string, T>& objects, const std::string& key) {
  auto it = objects.find(key);
  return it == objects.end() ? nullptr : &it->second;
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

bool EndpointIndexDelta::empty() const {
  return workloads_removed.empty() && workloads_added.empty() && pods_removed.empty() && pods_added.empty() &&
         slices_removed.empty() && slices_added.empty();
}

EndpointIndex::EndpointIndex(const discovery::MeshSnapshot& mesh) {
  // Keys come in sorted order from the maps: appending keeps buckets sorted.
  for (const auto& [key, w] : mesh.workloads) {
    for (const auto& [k, v] : w.meta.labels)
      workloads_by_label_[LabelKey(w.meta.namespace_, k, v)].push_back(key);
  }
  for (const auto& [key, pod] : mesh.pods) {
    for (const auto& [k, v] : pod.meta.labels)
      pods_by_label_[LabelKey(pod.meta.namespace_, k, v)].push_back(key);
  }
  for (const auto& [key, slice] : mesh.endpoint_slices) {
    slices_by_service_[ServiceKey(slice.meta.namespace_, slice.service_name)].push_back(key);
  }
}

std::shared_ptr<const EndpointIndex> EndpointIndex::Updated(
    const std::shared_ptr<const EndpointIndex>& previous, const EndpointIndexDelta& delta) {
  if (delta.empty()) return previous;
  auto index = std::make_shared<EndpointIndex>(*previous);
  auto apply = [](Buckets& buckets, const EndpointIndexDelta::Entries& removed,
                  const EndpointIndexDelta::Entries& added) {
    for (const auto& [bucket, key] : removed) Erase(buckets, bucket, key);
    for (const auto& [bucket, key] : added) Insert(buckets, bucket, key);
  };
  apply(index->workloads_by_label_, delta.workloads_removed, delta.workloads_added);
  apply(index->pods_by_label_, delta.pods_removed, delta.pods_added);
  apply(index->slices_by_service_, delta.slices_removed, delta.slices_added);
  return index;
}

EndpointIndexDelta IndexDelta(const discovery::MeshSnapshot& before, const discovery::MeshSnapshot& after,
                              const discovery::EndpointChange& change) {
  EndpointIndexDelta delta;
  for (const auto& key : change.workloads) {
    DiffLabels(key, Find(before.workloads, key), Find(after.workloads, key), delta.workloads_removed,
               delta.workloads_added);
  }
  for (const auto& key : change.pods) {
    DiffLabels(key, Find(before.pods, key), Find(after.pods, key), delta.pods_removed, delta.pods_added);
  }
  for (const auto& key : change.endpoint_slices) {
    const auto* old_slice = Find(before.endpoint_slices, key);
    const auto* new_slice = Find(after.endpoint_slices, key);
    if (old_slice != nullptr && new_slice != nullptr &&
        old_slice->meta.namespace_ == new_slice->meta.namespace_ &&
        old_slice->service_name == new_slice->service_name) {
      continue;
    }
    if (old_slice != nullptr) {
      delta.slices_removed.emplace_back(ServiceKey(old_slice->meta.namespace_, old_slice->service_name), key);
    }
    if (new_slice != nullptr) {
      delta.slices_added.emplace_back(ServiceKey(new_slice->meta.namespace_, new_slice->service_name), key);
    }
  }
  return delta;
}

std::vector<const discovery::Workload*> EndpointIndex::SelectWorkloads(
    const discovery::MeshSnapshot& mesh, const std::string& ns,
    const std::map<std::string, std::string>& selector) const {
  return Select(mesh.workloads, workloads_by_label_, ns, selector);
}

std::vector<const discovery::Pod*> EndpointIndex::SelectPods(
    const discovery::MeshSnapshot& mesh, const std::string& ns,
    const std::map<std::string, std::string>& selector) const {
  return Select(mesh.pods, pods_by_label_, ns, selector);
}

std::vector<const discovery::EndpointSlice*> EndpointIndex::SlicesOf(const discovery::MeshSnapshot& mesh,
                                                                     const std::string& ns,
                                                                     const std::string& service) const {
  std::vector<const discovery::EndpointSlice*> out;
  auto it = slices_by_service_.find(ServiceKey(ns, service));
  if (it == slices_by_service_.end()) return out;
  for (const std::string& key : it->second) {
    auto slice = mesh.endpoint_slices.find(key);
    assert(slice != mesh.endpoint_slices.end() && "EndpointIndex used with a snapshot it is not of");
    if (slice != mesh.endpoint_slices.end()) out.push_back(&slice->second);
  }
  return out;
}

std::vector<ResolvedEndpoint> ResolveEndpoints(const discovery::MeshSnapshot& mesh,
                                               const discovery::Service& service,
                                               const discovery::ServicePort& port,
                                               const EndpointIndex* index) {
  std::vector<ResolvedEndpoint> out;
  const std::string& ns = service.meta.namespace_;
  if (index != nullptr) {
    for (const auto* slice : index->SlicesOf(mesh, ns, service.meta.name))
      AddSliceEndpoints(*slice, port, out);
    for (const auto* workload : index->SelectWorkloads(mesh, ns, service.selector)) {
      AddWorkloadEndpoint(*workload, port, out);
    }
  } else {
    for (const auto& [key, slice] : mesh.endpoint_slices) {
      if (slice.meta.namespace_ == ns && slice.service_name == service.meta.name)
        AddSliceEndpoints(slice, port, out);
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
