#include "server/kube_policy_status.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::server {
namespace {

using discovery::ConfigError;
using discovery::KubeCondition;
using nlohmann::json;

std::string Describe(const std::vector<ConfigError>& errors) {
  std::vector<std::string> parts;
  for (const ConfigError& e : errors)
    parts.push_back(e.field.empty() ? e.reason : absl::StrCat(e.field, ": ", e.reason));
  return absl::StrJoin(parts, "; ");
}

// Problems with what a route's rules refer to: backendRefs and mirror
// backends (the validator's paths "spec.rules[i].backendRefs[j]..." and
// "spec.rules[i].filters...").
bool AboutBackends(const ConfigError& e) {
  return absl::StartsWith(e.field, "spec.rules") &&
         (absl::StrContains(e.field, ".backendRefs") || absl::StrContains(e.field, ".filters"));
}

// Gateway API ResolvedRefs for a route: InvalidKind when a backendRef names a
// kind or group Weft cannot route to, BackendNotFound when a Service or its
// port does not exist.
KubeCondition ResolvedRefs(const policy::PolicyStatus& status) {
  std::vector<ConfigError> invalid_kind, not_found;
  for (const ConfigError& e : status.errors) {
    if (AboutBackends(e) && (absl::EndsWith(e.field, ".kind") || absl::EndsWith(e.field, ".group"))) {
      invalid_kind.push_back(e);
    }
  }
  for (const ConfigError& e : status.warnings) {
    if (AboutBackends(e)) not_found.push_back(e);
  }
  if (!invalid_kind.empty())
    return KubeCondition{"ResolvedRefs", false, "InvalidKind", Describe(invalid_kind), 0};
  if (!not_found.empty())
    return KubeCondition{"ResolvedRefs", false, "BackendNotFound", Describe(not_found), 0};
  return KubeCondition{"ResolvedRefs", true, "ResolvedRefs", "", 0};
}

// A parentRef of the mesh (GAMMA) pattern: a core Service.
bool IsServiceParent(const json& ref) {
  if (!ref.is_object() || !ref.contains("kind") || ref["kind"] != "Service") return false;
  if (!ref.contains("name") || !ref["name"].is_string()) return false;
  return !ref.contains("group") || ref["group"] == "" || ref["group"] == "core";
}

KubeCondition ParentAccepted(const discovery::MeshSnapshot& mesh, const policy::PolicyStatus& status,
                             const std::string& route_ns, const json& ref) {
  if (!status.errors.empty())
    return KubeCondition{"Accepted", false, "UnsupportedValue", Describe(status.errors), 0};
  const std::string ns = ref.contains("namespace") && ref["namespace"].is_string()
                             ? ref["namespace"].get<std::string>()
                             : route_ns;
  const std::string name = ref["name"].get<std::string>();
  auto it = mesh.services.find(discovery::ObjectKey(ns, name));
  if (it == mesh.services.end()) {
    return KubeCondition{"Accepted", false, "NoMatchingParent",
                         absl::StrCat("Service ", ns, "/", name, " not found"), 0};
  }
  if (ref.contains("port") && ref["port"].is_number_integer()) {
    const int64_t port = ref["port"].get<int64_t>();
    const auto& ports = it->second.ports;
    if (std::none_of(ports.begin(), ports.end(),
                     [&](const discovery::ServicePort& p) { return int64_t{p.port} == port; })) {
      return KubeCondition{"Accepted", false, "NoMatchingParent",
                           absl::StrCat("Service ", ns, "/", name, " has no port ", port), 0};
    }
  }
  return KubeCondition{"Accepted", true, "Accepted", "", 0};
}

discovery::KubeObjectVerdict RouteVerdict(const discovery::MeshSnapshot& mesh,
                                          const policy::PolicyStatus& status,
                                          const discovery::PolicyDocument& doc) {
  discovery::KubeObjectVerdict verdict;
  verdict.route = true;
  const json* refs = nullptr;
  if (doc.body.is_object() && doc.body.contains("spec") && doc.body["spec"].is_object() &&
      doc.body["spec"].contains("parentRefs") && doc.body["spec"]["parentRefs"].is_array()) {
    refs = &doc.body["spec"]["parentRefs"];
  }
  if (refs == nullptr) return verdict;
  const KubeCondition resolved = ResolvedRefs(status);
  for (const json& ref : *refs) {
    if (!IsServiceParent(ref)) continue;  // Gateways are their controllers' business
    // Gateway API allows 32 parent statuses.
    if (verdict.route_parents.size() == 32) break;
    discovery::KubeRouteParentStatus parent;
    parent.parent_ref = ref;
    parent.conditions = {ParentAccepted(mesh, status, doc.meta.namespace_, ref), resolved};
    verdict.route_parents.push_back(std::move(parent));
  }
  return verdict;
}

}  // namespace

std::map<std::string, discovery::KubeObjectVerdict> KubePolicyVerdicts(const discovery::MeshSnapshot& mesh,
                                                                       const policy::PolicySet& policies) {
  std::map<std::string, discovery::KubeObjectVerdict> verdicts;
  for (const auto& [key, status] : policies.statuses) {
    auto doc = mesh.policies.find(key);
    if (doc == mesh.policies.end()) continue;
    if (status.kind == "HTTPRoute") {
      verdicts[key] = RouteVerdict(mesh, status, doc->second);
      continue;
    }
    discovery::KubeObjectVerdict verdict;
    if (status.accepted) {
      // Accepted; what it refers to but is missing is said in the message.
      verdict.conditions.push_back(KubeCondition{"Accepted", true, "Accepted", Describe(status.warnings), 0});
    } else {
      verdict.conditions.push_back(KubeCondition{"Accepted", false, "Invalid", Describe(status.errors), 0});
    }
    verdicts[key] = std::move(verdict);
  }
  return verdicts;
}

}  // namespace weft::server
