#include "discovery/mesh_snapshot.h"

#include <tuple>

#include "absl/strings/str_cat.h"

namespace weft::discovery {
namespace {

// Member-wise equality of the model structs. Kept here rather than as
// operators on the structs so that the model header stays plain data.
// Declared up front so that the container templates below find them all.
bool Equal(const EndpointPort& a, const EndpointPort& b);
bool Equal(const Endpoint& a, const Endpoint& b);
bool Equal(const ConfigError& a, const ConfigError& b);

bool Equal(const ObjectMeta& a, const ObjectMeta& b) {
  return std::tie(a.name, a.namespace_, a.labels, a.annotations, a.resource_version, a.generation) ==
             std::tie(b.name, b.namespace_, b.labels, b.annotations, b.resource_version, b.generation) &&
         a.source == b.source;
}

bool Equal(const Service& a, const Service& b) {
  return Equal(a.meta, b.meta) && a.cluster_ip == b.cluster_ip && a.selector == b.selector &&
         a.ports == b.ports;
}

bool Equal(const EndpointPort& a, const EndpointPort& b) {
  return std::tie(a.name, a.port, a.protocol, a.app_protocol) ==
         std::tie(b.name, b.port, b.protocol, b.app_protocol);
}

bool Equal(const Endpoint& a, const Endpoint& b) {
  return std::tie(a.addresses, a.ready, a.serving, a.terminating, a.node_name, a.zone, a.target_pod) ==
         std::tie(b.addresses, b.ready, b.serving, b.terminating, b.node_name, b.zone, b.target_pod);
}

template <typename T>
bool EqualVectors(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Equal(a[i], b[i])) return false;
  }
  return true;
}

bool Equal(const EndpointSlice& a, const EndpointSlice& b) {
  return Equal(a.meta, b.meta) && a.service_name == b.service_name && a.address_type == b.address_type &&
         EqualVectors(a.ports, b.ports) && EqualVectors(a.endpoints, b.endpoints);
}

bool Equal(const Workload& a, const Workload& b) {
  return Equal(a.meta, b.meta) && a.address == b.address && a.ports == b.ports &&
         a.service_account == b.service_account;
}

bool Equal(const Pod& a, const Pod& b) {
  return Equal(a.meta, b.meta) && a.pod_ip == b.pod_ip && a.service_account == b.service_account &&
         a.ready == b.ready;
}

bool Equal(const Namespace& a, const Namespace& b) { return Equal(a.meta, b.meta); }

bool Equal(const PolicyDocument& a, const PolicyDocument& b) {
  return a.api_version == b.api_version && a.kind == b.kind && Equal(a.meta, b.meta) && a.body == b.body;
}

bool Equal(const ConfigError& a, const ConfigError& b) {
  return a.source == b.source && std::tie(a.kind, a.namespace_, a.name, a.field, a.reason) ==
                                     std::tie(b.kind, b.namespace_, b.name, b.field, b.reason);
}

// The keys whose objects differ (added, removed or changed), in key order.
template <typename T>
std::vector<std::string> ChangedKeys(const std::map<std::string, T>& a, const std::map<std::string, T>& b) {
  std::vector<std::string> out;
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      out.push_back((ia++)->first);
    } else if (ia == a.end() || ib->first < ia->first) {
      out.push_back((ib++)->first);
    } else {
      if (!Equal(ia->second, ib->second)) out.push_back(ia->first);
      ++ia;
      ++ib;
    }
  }
  return out;
}

template <typename T>
bool EqualMaps(const std::map<std::string, T>& a, const std::map<std::string, T>& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || !Equal(ia->second, ib->second)) return false;
  }
  return true;
}

}  // namespace

std::string SourceRef::ToString() const {
  if (file.empty()) return "kubernetes";
  if (document < 0) return file;
  return absl::StrCat(file, "#", document);
}

std::string ConfigError::ToString() const {
  std::string out = source.ToString();
  if (!kind.empty() || !name.empty()) {
    absl::StrAppend(&out, ": ", kind.empty() ? "object" : kind, " ",
                    ObjectKey(namespace_, name.empty() ? "<unnamed>" : name));
  }
  if (!field.empty()) absl::StrAppend(&out, ": ", field);
  absl::StrAppend(&out, ": ", reason);
  return out;
}

std::string ObjectKey(const std::string& ns, const std::string& name) {
  if (ns.empty()) return name;
  return absl::StrCat(ns, "/", name);
}

bool SameObject(const Service& a, const Service& b) { return Equal(a, b); }
bool SameObject(const EndpointSlice& a, const EndpointSlice& b) { return Equal(a, b); }
bool SameObject(const Workload& a, const Workload& b) { return Equal(a, b); }
bool SameObject(const Pod& a, const Pod& b) { return Equal(a, b); }
bool SameObject(const Namespace& a, const Namespace& b) { return Equal(a, b); }
bool SameObject(const PolicyDocument& a, const PolicyDocument& b) { return Equal(a, b); }
bool SameObject(const ConfigError& a, const ConfigError& b) { return Equal(a, b); }

bool SameContent(const MeshSnapshot& a, const MeshSnapshot& b) {
  return EqualMaps(a.services, b.services) && EqualMaps(a.endpoint_slices, b.endpoint_slices) &&
         EqualMaps(a.workloads, b.workloads) && EqualMaps(a.pods, b.pods) &&
         EqualMaps(a.namespaces, b.namespaces) && EqualMaps(a.policies, b.policies) &&
         EqualVectors(a.errors, b.errors);
}

std::optional<EndpointChange> EndpointsOnlyChange(const MeshSnapshot& before, const MeshSnapshot& after) {
  if (!EqualMaps(before.services, after.services) || !EqualMaps(before.namespaces, after.namespaces) ||
      !EqualMaps(before.policies, after.policies) || !EqualVectors(before.errors, after.errors)) {
    return std::nullopt;
  }
  EndpointChange change;
  change.workloads = ChangedKeys(before.workloads, after.workloads);
  change.pods = ChangedKeys(before.pods, after.pods);
  change.endpoint_slices = ChangedKeys(before.endpoint_slices, after.endpoint_slices);
  return change;
}

}  // namespace weft::discovery
