// The service registry model: what discovery produces and the policy compiler
// reads. A MeshSnapshot is immutable once published (shared_ptr<const>), is
// versioned, and is replaced whole by pointer swap when a source changes. It
// knows nothing of Envoy or of policy semantics: policy objects (HTTPRoute and
// the weft.io kinds) are carried as parsed but not yet validated documents.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace weft::discovery {

// Where an object came from, shown to users next to errors:
// "examples/greeter/mesh.yaml#2" (file, 0-based document index) in file
// mode, "kubernetes:shop/orders" in Kubernetes mode.
struct SourceRef {
  std::string file;   // path as given under --config-dir, or "" for Kubernetes
  int document = -1;  // index of the YAML document within the file
  std::string ToString() const;
  bool operator==(const SourceRef& o) const { return file == o.file && document == o.document; }
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // "default" when the manifest leaves it out
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string resource_version;
  int64_t generation = 0;
  SourceRef source;
};

// A Service port. target_port is either a number or a name (of a container
// port / Workload port); both empty means "same as port".
struct ServicePort {
  std::string name;
  uint32_t port = 0;
  uint32_t target_port_number = 0;
  std::string target_port_name;
  std::string protocol = "TCP";
  std::string app_protocol;
  // Spelled out: defaulted comparisons need C++20 and Weft builds as C++17.
  bool operator==(const ServicePort& o) const {
    return name == o.name && port == o.port && target_port_number == o.target_port_number &&
           target_port_name == o.target_port_name && protocol == o.protocol && app_protocol == o.app_protocol;
  }
};

struct Service {
  ObjectMeta meta;
  std::string cluster_ip;  // "" or "None" for headless
  std::map<std::string, std::string> selector;
  std::vector<ServicePort> ports;
};

struct EndpointPort {
  std::string name;
  uint32_t port = 0;
  std::string protocol = "TCP";
  std::string app_protocol;
};

struct Endpoint {
  std::vector<std::string> addresses;
  bool ready = true;  // conditions.ready; absent means ready
  bool serving = true;
  bool terminating = false;
  std::string node_name;
  std::string zone;
  std::string target_pod;  // targetRef.name when targetRef.kind == Pod
};

// discovery.k8s.io/v1 EndpointSlice, owned by the Service named in the
// kubernetes.io/service-name label.
struct EndpointSlice {
  ObjectMeta meta;
  std::string service_name;
  std::string address_type = "IPv4";
  std::vector<EndpointPort> ports;
  std::vector<Endpoint> endpoints;
};

// weft.io/v1alpha1 Workload: a workload outside Kubernetes, selected by
// Services like a Pod.
struct Workload {
  ObjectMeta meta;
  std::string address;
  std::map<std::string, uint32_t> ports;  // Service port name -> port
  std::string service_account = "default";
};

// v1 Pod: only what the mesh needs (identity and address).
struct Pod {
  ObjectMeta meta;
  std::string pod_ip;
  std::string service_account = "default";
  bool ready = false;
};

struct Namespace {
  ObjectMeta meta;
};

// A policy document (HTTPRoute, TrafficPolicy, AuthorizationPolicy,
// RateLimitPolicy, MTLSPolicy) as parsed from YAML/JSON, not yet validated:
// policy/ validates it into a PolicySet.
struct PolicyDocument {
  std::string api_version;
  std::string kind;
  ObjectMeta meta;
  nlohmann::json body;  // the whole object as JSON
};

// A problem with one input (a file, a document, an object), kept in the
// snapshot so that the admin API and weftctl can show it.
struct ConfigError {
  SourceRef source;
  std::string kind;  // "" when the document could not be read far enough
  std::string namespace_;
  std::string name;
  std::string field;  // field path, e.g. spec.ports[0].port; "" for syntax errors
  std::string reason;
  std::string ToString() const;  // "<source>: <kind> <ns>/<name>: <field>: <reason>"
};

// Key of a namespaced object: "namespace/name"; just "name" for a
// cluster-scoped object (an empty namespace, as for Namespace objects).
std::string ObjectKey(const std::string& ns, const std::string& name);

struct MeshSnapshot {
  uint64_t version = 0;  // increases with every published snapshot of one source
  // All maps are keyed by ObjectKey(namespace, name), so iteration is sorted
  // and deterministic.
  std::map<std::string, Service> services;
  std::map<std::string, EndpointSlice> endpoint_slices;
  std::map<std::string, Workload> workloads;
  std::map<std::string, Pod> pods;
  std::map<std::string, Namespace> namespaces;
  std::map<std::string, PolicyDocument> policies;  // keyed by "Kind/namespace/name"
  std::vector<ConfigError> errors;
};

using MeshSnapshotConstSharedPtr = std::shared_ptr<const MeshSnapshot>;

// Member-wise equality of one object (every field, the source included):
// what SameContent compares per object.
bool SameObject(const Service& a, const Service& b);
bool SameObject(const EndpointSlice& a, const EndpointSlice& b);
bool SameObject(const Workload& a, const Workload& b);
bool SameObject(const Pod& a, const Pod& b);
bool SameObject(const Namespace& a, const Namespace& b);
bool SameObject(const PolicyDocument& a, const PolicyDocument& b);
bool SameObject(const ConfigError& a, const ConfigError& b);

// True when two snapshots describe the same mesh: every field but `version`
// is compared, including objects' sources and the errors (in order). Sources
// use it to avoid publishing no-op changes.
bool SameContent(const MeshSnapshot& a, const MeshSnapshot& b);

// The Workloads, Pods and EndpointSlices (ObjectKeys) that were added,
// removed or changed between two snapshots.
struct EndpointChange {
  std::vector<std::string> workloads;
  std::vector<std::string> pods;
  std::vector<std::string> endpoint_slices;
};

// Set when `before` and `after` differ only in where workloads run:
// Workloads, Pods and EndpointSlices; Services, Namespaces, policies and
// errors are the same. The server compiles such a change incrementally.
std::optional<EndpointChange> EndpointsOnlyChange(const MeshSnapshot& before, const MeshSnapshot& after);

}  // namespace weft::discovery
