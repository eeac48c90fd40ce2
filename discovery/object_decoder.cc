#include "discovery/object_decoder.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

constexpr absl::string_view kPortReason = "must be an integer between 1 and 65535";

// ---------------------------------------------------------------------------
// Which apiVersion serves which kind.

struct KnownKind {
  absl::string_view kind;
  absl::string_view group;                    // "" for the core group ("v1")
  std::array<absl::string_view, 2> versions;  // "" marks an unused slot
};

constexpr absl::string_view kGatewayGroup = "gateway.networking.k8s.io";
constexpr absl::string_view kWeftGroup = "weft.io";

constexpr KnownKind kKnownKinds[] = {
    {"Service", "", {"v1", ""}},
    {"Pod", "", {"v1", ""}},
    {"Namespace", "", {"v1", ""}},
    {"EndpointSlice", "discovery.k8s.io", {"discovery.k8s.io/v1", ""}},
    {"HTTPRoute", kGatewayGroup, {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"}},
    {"Workload", kWeftGroup, {"weft.io/v1alpha1", ""}},
    {"TrafficPolicy", kWeftGroup, {"weft.io/v1alpha1", ""}},
    {"AuthorizationPolicy", kWeftGroup, {"weft.io/v1alpha1", ""}},
    {"RateLimitPolicy", kWeftGroup, {"weft.io/v1alpha1", ""}},
    {"MTLSPolicy", kWeftGroup, {"weft.io/v1alpha1", ""}},
};

absl::string_view GroupOf(absl::string_view api_version) {
  size_t slash = api_version.find('/');
  return slash == absl::string_view::npos ? absl::string_view() : api_version.substr(0, slash);
}

const KnownKind* FindKind(absl::string_view kind, absl::string_view group) {
  for (const KnownKind& k : kKnownKinds) {
    if (k.kind == kind && k.group == group) return &k;
  }
  return nullptr;
}

std::string WeftKindsList() {
  std::vector<std::string> kinds;
  for (const KnownKind& k : kKnownKinds) {
    if (k.group == kWeftGroup) kinds.emplace_back(k.kind);
  }
  return absl::StrJoin(kinds, ", ");
}

// ---------------------------------------------------------------------------
// Field paths: spec.ports[0].port, metadata.labels["kubernetes.io/service-name"].

bool IsPlainKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string Child(const std::string& path, absl::string_view key) {
  if (!IsPlainKey(key)) return absl::StrCat(path, "[\"", key, "\"]");
  if (path.empty()) return std::string(key);
  return absl::StrCat(path, ".", key);
}

std::string Index(const std::string& path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

// ---------------------------------------------------------------------------
// Syntax checks of names and addresses.

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// RFC 1123 label: lowercase letters, digits and '-', starting and ending with
// a letter or digit, at most 63 characters.
bool IsDns1123Label(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

// RFC 1035 label: an RFC 1123 label that starts with a letter (Service names).
bool IsDns1035Label(absl::string_view s) { return IsDns1123Label(s) && s.front() >= 'a' && s.front() <= 'z'; }

// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
bool IsDns1123Subdomain(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

// IANA service name, which a named targetPort refers to: at most 15
// lowercase letters, digits and '-', with at least one letter, no leading,
// trailing or doubled '-'.
bool IsPortName(absl::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  if (absl::StrContains(s, "--")) return false;
  bool has_letter = false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
    if (c >= 'a' && c <= 'z') has_letter = true;
  }
  return has_letter;
}

bool IsIPv4(const std::string& s) {
  in_addr addr;
  return inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

bool IsIPv6(const std::string& s) {
  in6_addr addr;
  return inet_pton(AF_INET6, s.c_str(), &addr) == 1;
}

bool IsIP(const std::string& s) { return IsIPv4(s) || IsIPv6(s); }

constexpr absl::string_view kSubdomainReason =
    "must be a lowercase RFC 1123 subdomain (letters, digits, '-' and '.', starting and ending "
    "with a letter or digit, at most 253 characters)";
constexpr absl::string_view kLabelReason =
    "must be a lowercase RFC 1123 label (letters, digits and '-', starting and ending with a "
    "letter or digit, at most 63 characters)";

// Integer value of a JSON number without fraction, if it fits int64.
std::optional<int64_t> IntegerValue(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

std::optional<uint32_t> PortValue(const json& v) {
  std::optional<int64_t> i = IntegerValue(v);
  if (!i || *i < 1 || *i > 65535) return std::nullopt;
  return static_cast<uint32_t>(*i);
}

// ---------------------------------------------------------------------------

// Decodes one object, collecting every error. Each Decode* method reads one
// part of the object and records problems under that part's field path.
class ObjectDecoder {
 public:
  ObjectDecoder(const json& object, const SourceRef& source) : object_(object), source_(source) {}

  DecodeResult Decode() {
    if (!object_.is_object()) {
      result_.errors.push_back(MakeError(
          "", "must be an object (a Kubernetes-style manifest with apiVersion, kind and metadata)"));
      return Finish();
    }
    std::optional<std::string> api_version = String(object_, "apiVersion", "", /*required=*/true);
    std::optional<std::string> kind = String(object_, "kind", "", /*required=*/true);
    if (api_version) result_.api_version = *api_version;
    if (kind) result_.kind = *kind;
    if (!api_version || !kind || api_version->empty() || kind->empty()) {
      // Read the identity anyway, for a better error message.
      if (api_version && api_version->empty()) Error("apiVersion", "required");
      if (kind && kind->empty()) Error("kind", "required");
      ReadIdentityForErrors();
      return Finish();
    }

    const absl::string_view group = GroupOf(*api_version);
    const KnownKind* known = FindKind(*kind, group);
    if (known == nullptr) {
      if (group == kWeftGroup) {
        ReadIdentityForErrors();
        Error("kind", absl::StrCat("unknown kind \"", *kind, "\" in ", kWeftGroup,
                                   " (known: ", WeftKindsList(), ")"));
        return Finish();
      }
      result_.outcome = DecodeResult::Outcome::kIgnored;
      return std::move(result_);
    }
    if (*api_version != known->versions[0] && *api_version != known->versions[1]) {
      ReadIdentityForErrors();
      std::string served = std::string(known->versions[0]);
      if (!known->versions[1].empty()) absl::StrAppend(&served, " or ", known->versions[1]);
      Error("apiVersion", absl::StrCat("version \"", *api_version, "\" of ", *kind, " is not supported (use ",
                                       served, ")"));
      return Finish();
    }

    const bool cluster_scoped = *kind == "Namespace";
    ObjectMeta meta = DecodeMeta(cluster_scoped, *kind == "Service");
    const json empty_object = json::object();
    if (*kind == "Service") {
      Service service;
      service.meta = std::move(meta);
      DecodeService(ObjectField(object_, "spec", "spec", empty_object), service);
      result_.object = std::move(service);
    } else if (*kind == "EndpointSlice") {
      EndpointSlice slice;
      slice.meta = std::move(meta);
      DecodeEndpointSlice(slice);
      result_.object = std::move(slice);
    } else if (*kind == "Workload") {
      Workload workload;
      workload.meta = std::move(meta);
      const json* spec = Field(object_, "spec");
      if (spec == nullptr) {
        Error("spec", "required");
      } else if (!spec->is_object()) {
        Error("spec", "must be an object");
      } else {
        DecodeWorkload(*spec, workload);
      }
      result_.object = std::move(workload);
    } else if (*kind == "Pod") {
      Pod pod;
      pod.meta = std::move(meta);
      DecodePod(pod);
      result_.object = std::move(pod);
    } else if (*kind == "Namespace") {
      Namespace ns;
      ns.meta = std::move(meta);
      result_.object = std::move(ns);
    } else {
      PolicyDocument doc;
      doc.api_version = *api_version;
      doc.kind = *kind;
      doc.meta = std::move(meta);
      doc.body = object_;
      result_.object = std::move(doc);
    }
    return Finish();
  }

 private:
  DecodeResult Finish() {
    if (result_.errors.empty() && result_.object) {
      result_.outcome = DecodeResult::Outcome::kDecoded;
    } else {
      result_.outcome = DecodeResult::Outcome::kInvalid;
      result_.object.reset();
      // Errors recorded before the identity was known get it now.
      for (ConfigError& e : result_.errors) {
        e.kind = result_.kind;
        e.namespace_ = result_.namespace_;
        e.name = result_.name;
      }
    }
    return std::move(result_);
  }

  ConfigError MakeError(std::string field, std::string reason) const {
    ConfigError e;
    e.source = source_;
    e.field = std::move(field);
    e.reason = std::move(reason);
    return e;
  }

  void Error(std::string field, std::string reason) {
    result_.errors.push_back(MakeError(std::move(field), std::move(reason)));
  }

  // The member `key` of `parent`, or nullptr when absent or null (Kubernetes
  // treats an explicit null like an absent field).
  static const json* Field(const json& parent, const char* key) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::optional<std::string> String(const json& parent, const char* key, const std::string& path,
                                    bool required) {
    const std::string field = Child(path, key);
    const json* v = Field(parent, key);
    if (v == nullptr) {
      if (required) Error(field, "required");
      return std::nullopt;
    }
    if (!v->is_string()) {
      Error(field, "must be a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  std::optional<bool> Bool(const json& parent, const char* key, const std::string& path) {
    const json* v = Field(parent, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      Error(Child(path, key), "must be true or false");
      return std::nullopt;
    }
    return v->get<bool>();
  }

  // The object member `key`, or `fallback` when absent or not an object (the
  // latter is an error).
  const json& ObjectField(const json& parent, const char* key, const std::string& field,
                          const json& fallback) {
    const json* v = Field(parent, key);
    if (v == nullptr) return fallback;
    if (!v->is_object()) {
      Error(field, "must be an object");
      return fallback;
    }
    return *v;
  }

  // The list member `key`, or nullptr when absent or not a list.
  const json* ListField(const json& parent, const char* key, const std::string& field) {
    const json* v = Field(parent, key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      Error(field, "must be a list");
      return nullptr;
    }
    return v;
  }

  std::map<std::string, std::string> StringMap(const json& parent, const char* key, const std::string& path) {
    std::map<std::string, std::string> out;
    const std::string field = Child(path, key);
    const json* v = Field(parent, key);
    if (v == nullptr) return out;
    if (!v->is_object()) {
      Error(field, "must be a map of strings");
      return out;
    }
    for (const auto& [k, value] : v->items()) {
      if (k.empty()) {
        Error(field, "keys must not be empty");
      } else if (!value.is_string()) {
        Error(Child(field, k), "must be a string (quote values such as \"1\" or \"true\")");
      } else {
        out[k] = value.get<std::string>();
      }
    }
    return out;
  }

  std::optional<uint32_t> Port(const json& parent, const char* key, const std::string& path, bool required) {
    const std::string field = Child(path, key);
    const json* v = Field(parent, key);
    if (v == nullptr) {
      if (required) Error(field, "required");
      return std::nullopt;
    }
    std::optional<uint32_t> port = PortValue(*v);
    if (!port) Error(field, std::string(kPortReason));
    return port;
  }

  std::string Protocol(const json& parent, const std::string& path) {
    std::optional<std::string> p = String(parent, "protocol", path, false);
    if (!p) return "TCP";
    if (*p != "TCP" && *p != "UDP" && *p != "SCTP") {
      Error(Child(path, "protocol"), "must be TCP, UDP or SCTP");
      return "TCP";
    }
    return *p;
  }

  // Best-effort identity for objects rejected before metadata is decoded.
  void ReadIdentityForErrors() {
    auto meta = object_.find("metadata");
    if (meta == object_.end() || !meta->is_object()) return;
    auto name = meta->find("name");
    if (name != meta->end() && name->is_string()) result_.name = name->get<std::string>();
    if (result_.kind == "Namespace") return;  // cluster-scoped
    auto ns = meta->find("namespace");
    if (ns != meta->end() && ns->is_string() && !ns->get_ref<const std::string&>().empty()) {
      result_.namespace_ = ns->get<std::string>();
    } else {
      result_.namespace_ = "default";
    }
  }

  ObjectMeta DecodeMeta(bool cluster_scoped, bool service_name_rules) {
    ObjectMeta meta;
    meta.source = source_;
    const json* m = Field(object_, "metadata");
    if (m == nullptr) {
      Error("metadata", "required");
      if (!cluster_scoped) meta.namespace_ = result_.namespace_ = "default";
      return meta;
    }
    if (!m->is_object()) {
      Error("metadata", "must be an object");
      if (!cluster_scoped) meta.namespace_ = result_.namespace_ = "default";
      return meta;
    }
    const std::string path = "metadata";
    if (std::optional<std::string> name = String(*m, "name", path, /*required=*/true)) {
      meta.name = *name;
      result_.name = *name;
      if (service_name_rules) {
        if (!IsDns1035Label(*name)) {
          Error("metadata.name",
                "must be a lowercase RFC 1035 label (letters, digits and '-', starting with a "
                "letter and ending with a letter or digit, at most 63 characters)");
        }
      } else if (cluster_scoped) {
        if (!IsDns1123Label(*name)) Error("metadata.name", std::string(kLabelReason));
      } else if (!IsDns1123Subdomain(*name)) {
        Error("metadata.name", std::string(kSubdomainReason));
      }
    }
    if (!cluster_scoped) {
      meta.namespace_ = "default";
      if (std::optional<std::string> ns = String(*m, "namespace", path, false)) {
        if (ns->empty()) {
          // Same as absent.
        } else if (!IsDns1123Label(*ns)) {
          meta.namespace_ = *ns;
          Error("metadata.namespace", std::string(kLabelReason));
        } else {
          meta.namespace_ = *ns;
        }
      }
      result_.namespace_ = meta.namespace_;
    }
    meta.labels = StringMap(*m, "labels", path);
    meta.annotations = StringMap(*m, "annotations", path);
    if (std::optional<std::string> rv = String(*m, "resourceVersion", path, false)) {
      meta.resource_version = *rv;
    }
    if (const json* g = Field(*m, "generation")) {
      std::optional<int64_t> generation = IntegerValue(*g);
      if (!generation || *generation < 0) {
        Error("metadata.generation", "must be a non-negative integer");
      } else {
        meta.generation = *generation;
      }
    }
    return meta;
  }

  void DecodeService(const json& spec, Service& service) {
    if (std::optional<std::string> ip = String(spec, "clusterIP", "spec", false)) {
      if (!ip->empty() && *ip != "None" && !IsIP(*ip)) {
        Error("spec.clusterIP", "must be an IP address, \"None\" (headless) or empty");
      }
      service.cluster_ip = *ip;
    }
    service.selector = StringMap(spec, "selector", "spec");
    const json* ports = ListField(spec, "ports", "spec.ports");
    if (ports == nullptr) return;
    std::set<std::string> names;
    for (size_t i = 0; i < ports->size(); ++i) {
      const std::string path = Index("spec.ports", i);
      const json& p = (*ports)[i];
      if (!p.is_object()) {
        Error(path, "must be an object");
        continue;
      }
      ServicePort port;
      if (std::optional<std::string> name = String(p, "name", path, false)) {
        port.name = *name;
        if (!name->empty() && !IsDns1123Label(*name)) {
          Error(Child(path, "name"), std::string(kLabelReason));
        } else if (!name->empty() && !names.insert(*name).second) {
          Error(Child(path, "name"), absl::StrCat("duplicate port name \"", *name, "\""));
        }
      }
      if (port.name.empty() && ports->size() > 1) {
        Error(Child(path, "name"), "required when the Service has more than one port");
      }
      if (std::optional<uint32_t> number = Port(p, "port", path, /*required=*/true)) {
        port.port = *number;
      }
      if (const json* target = Field(p, "targetPort")) {
        const std::string field = Child(path, "targetPort");
        if (target->is_string()) {
          const std::string name = target->get<std::string>();
          if (IsPortName(name)) {
            port.target_port_name = name;
          } else {
            Error(field, absl::StrCat(kPortReason,
                                      " or a port name (lowercase letters, digits and "
                                      "'-', at most 15 characters, with a letter)"));
          }
        } else if (std::optional<uint32_t> number = PortValue(*target)) {
          port.target_port_number = *number;
        } else {
          Error(field, absl::StrCat(kPortReason, " or a port name"));
        }
      }
      port.protocol = Protocol(p, path);
      if (std::optional<std::string> ap = String(p, "appProtocol", path, false)) {
        port.app_protocol = *ap;
      }
      service.ports.push_back(std::move(port));
    }
  }

  void DecodeEndpointSlice(EndpointSlice& slice) {
    static constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
    auto label = slice.meta.labels.find(kServiceNameLabel);
    if (label == slice.meta.labels.end() || label->second.empty()) {
      Error(Child("metadata.labels", kServiceNameLabel),
            "required: names the Service this EndpointSlice belongs to");
    } else {
      slice.service_name = label->second;
    }
    if (std::optional<std::string> type = String(object_, "addressType", "", false)) {
      if (*type != "IPv4" && *type != "IPv6" && *type != "FQDN") {
        Error("addressType", "must be IPv4, IPv6 or FQDN");
      } else {
        slice.address_type = *type;
      }
    }
    if (const json* ports = ListField(object_, "ports", "ports")) {
      for (size_t i = 0; i < ports->size(); ++i) {
        const std::string path = Index("ports", i);
        const json& p = (*ports)[i];
        if (!p.is_object()) {
          Error(path, "must be an object");
          continue;
        }
        EndpointPort port;
        if (std::optional<std::string> name = String(p, "name", path, false)) port.name = *name;
        if (std::optional<uint32_t> number = Port(p, "port", path, /*required=*/true)) {
          port.port = *number;
        }
        port.protocol = Protocol(p, path);
        if (std::optional<std::string> ap = String(p, "appProtocol", path, false)) {
          port.app_protocol = *ap;
        }
        slice.ports.push_back(std::move(port));
      }
    }
    const json* endpoints = ListField(object_, "endpoints", "endpoints");
    if (endpoints == nullptr) return;
    for (size_t i = 0; i < endpoints->size(); ++i) {
      const std::string path = Index("endpoints", i);
      const json& e = (*endpoints)[i];
      if (!e.is_object()) {
        Error(path, "must be an object");
        continue;
      }
      Endpoint endpoint;
      DecodeAddresses(e, path, slice.address_type, endpoint);
      const json empty_object = json::object();
      const std::string conditions_path = Child(path, "conditions");
      const json& conditions = ObjectField(e, "conditions", conditions_path, empty_object);
      std::optional<bool> ready = Bool(conditions, "ready", conditions_path);
      std::optional<bool> serving = Bool(conditions, "serving", conditions_path);
      std::optional<bool> terminating = Bool(conditions, "terminating", conditions_path);
      endpoint.ready = ready.value_or(true);
      endpoint.serving = serving.value_or(endpoint.ready);  // Kubernetes' reading of an unset field
      endpoint.terminating = terminating.value_or(false);
      if (std::optional<std::string> zone = String(e, "zone", path, false)) endpoint.zone = *zone;
      if (std::optional<std::string> node = String(e, "nodeName", path, false)) {
        endpoint.node_name = *node;
      }
      const std::string ref_path = Child(path, "targetRef");
      const json& ref = ObjectField(e, "targetRef", ref_path, empty_object);
      std::optional<std::string> ref_kind = String(ref, "kind", ref_path, false);
      std::optional<std::string> ref_name = String(ref, "name", ref_path, false);
      String(ref, "namespace", ref_path, false);  // type check only
      if (ref_kind && *ref_kind == "Pod") {
        if (!ref_name || ref_name->empty()) {
          Error(Child(ref_path, "name"), "required when targetRef.kind is Pod");
        } else {
          endpoint.target_pod = *ref_name;
        }
      }
      slice.endpoints.push_back(std::move(endpoint));
    }
  }

  void DecodeAddresses(const json& e, const std::string& path, const std::string& address_type,
                       Endpoint& endpoint) {
    const std::string field = Child(path, "addresses");
    const json* addresses = ListField(e, "addresses", field);
    if (addresses == nullptr) {
      if (Field(e, "addresses") == nullptr) Error(field, "required: at least one address");
      return;
    }
    if (addresses->empty()) {
      Error(field, "required: at least one address");
      return;
    }
    for (size_t j = 0; j < addresses->size(); ++j) {
      const std::string address_path = Index(field, j);
      const json& a = (*addresses)[j];
      if (!a.is_string()) {
        Error(address_path, "must be a string");
        continue;
      }
      const std::string address = a.get<std::string>();
      bool ok = true;
      if (address_type == "IPv4") {
        ok = IsIPv4(address);
        if (!ok) Error(address_path, "must be an IPv4 address (addressType is IPv4)");
      } else if (address_type == "IPv6") {
        ok = IsIPv6(address);
        if (!ok) Error(address_path, "must be an IPv6 address (addressType is IPv6)");
      } else {
        ok = IsDns1123Subdomain(address);
        if (!ok) Error(address_path, "must be a DNS name (addressType is FQDN)");
      }
      if (ok) endpoint.addresses.push_back(address);
    }
  }

  void DecodeWorkload(const json& spec, Workload& workload) {
    if (std::optional<std::string> address = String(spec, "address", "spec", /*required=*/true)) {
      if (!IsIP(*address)) {
        Error("spec.address", "must be an IP address");
      } else {
        workload.address = *address;
      }
    }
    if (const json* ports = Field(spec, "ports")) {
      if (!ports->is_object()) {
        Error("spec.ports", "must be a map of port name to port number");
      } else {
        for (const auto& [name, value] : ports->items()) {
          const std::string field = Child("spec.ports", name);
          if (!IsDns1123Label(name)) {
            Error(field, "the port name " + std::string(kLabelReason));
            continue;
          }
          std::optional<uint32_t> port = PortValue(value);
          if (!port) {
            Error(field, std::string(kPortReason));
          } else {
            workload.ports[name] = *port;
          }
        }
      }
    }
    if (std::optional<std::string> sa = String(spec, "serviceAccount", "spec", false)) {
      if (sa->empty()) {
        // Same as absent: "default".
      } else if (!IsDns1123Subdomain(*sa)) {
        Error("spec.serviceAccount", std::string(kSubdomainReason));
      } else {
        workload.service_account = *sa;
      }
    }
  }

  void DecodePod(Pod& pod) {
    const json empty_object = json::object();
    const json& spec = ObjectField(object_, "spec", "spec", empty_object);
    std::optional<std::string> sa = String(spec, "serviceAccountName", "spec", false);
    if (!sa || sa->empty()) sa = String(spec, "serviceAccount", "spec", false);  // deprecated alias
    if (sa && !sa->empty()) pod.service_account = *sa;

    const json& status = ObjectField(object_, "status", "status", empty_object);
    if (std::optional<std::string> ip = String(status, "podIP", "status", false)) {
      if (!ip->empty() && !IsIP(*ip)) {
        Error("status.podIP", "must be an IP address");
      } else {
        pod.pod_ip = *ip;
      }
    }
    if (const json* conditions = ListField(status, "conditions", "status.conditions")) {
      for (size_t i = 0; i < conditions->size(); ++i) {
        const json& c = (*conditions)[i];
        if (!c.is_object()) {
          Error(Index("status.conditions", i), "must be an object");
          continue;
        }
        auto type = c.find("type");
        auto value = c.find("status");
        if (type != c.end() && *type == "Ready") {
          pod.ready = value != c.end() && *value == "True";
        }
      }
    }
  }

  const json& object_;
  const SourceRef& source_;
  DecodeResult result_;
};

}  // namespace

DecodeResult DecodeObject(const nlohmann::json& object, const SourceRef& source) {
  return ObjectDecoder(object, source).Decode();
}

}  // namespace weft::discovery
