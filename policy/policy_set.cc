#include "policy/policy_set.h"

#include <algorithm>

namespace weft::policy {
namespace {

bool Targets(const std::vector<TargetRef>& targets, const std::string& kind, const std::string& name) {
  return std::any_of(targets.begin(), targets.end(),
                     [&](const TargetRef& t) { return t.kind == kind && t.name == name; });
}

// A Service in `ns` that targets list names and whose selector matches.
bool TargetsWorkload(const std::vector<TargetRef>& targets, const discovery::MeshSnapshot& mesh,
                     const std::string& ns, const std::map<std::string, std::string>& labels) {
  for (const auto& t : targets) {
    if (t.kind != "Service") continue;
    auto it = mesh.services.find(discovery::ObjectKey(ns, t.name));
    if (it == mesh.services.end() || it->second.selector.empty()) continue;
    if (LabelsMatch(it->second.selector, labels)) return true;
  }
  return false;
}

}  // namespace

bool LabelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

const TrafficPolicy* TrafficPolicyForService(const PolicySet& policies, const discovery::Service& service) {
  const TrafficPolicy* ns_wide = nullptr;
  const TrafficPolicy* mesh_wide = nullptr;
  // Sorted by (namespace, name): the first of a class wins.
  for (const auto& p : policies.traffic_policies) {
    if (p.meta.namespace_ == service.meta.namespace_) {
      if (Targets(p.targets, "Service", service.meta.name)) return &p;
      if (p.targets.empty() && ns_wide == nullptr) ns_wide = &p;
    }
    if (p.meta.namespace_ == policies.root_namespace && p.targets.empty() && mesh_wide == nullptr) mesh_wide = &p;
  }
  return ns_wide != nullptr ? ns_wide : mesh_wide;
}

const TrafficPolicy* TrafficPolicyForRoute(const PolicySet& policies, const HTTPRoute& route) {
  for (const auto& p : policies.traffic_policies) {
    if (p.meta.namespace_ == route.meta.namespace_ && Targets(p.targets, "HTTPRoute", route.meta.name)) return &p;
  }
  return nullptr;
}

const RateLimitPolicy* RateLimitPolicyForRoute(const PolicySet& policies, const HTTPRoute& route) {
  for (const auto& p : policies.rate_limit_policies) {
    if (p.meta.namespace_ == route.meta.namespace_ && Targets(p.targets, "HTTPRoute", route.meta.name))
      return &p;
  }
  return nullptr;
}

std::vector<RouteRateLimit> RouteRateLimitsFor(const PolicySet& policies, const discovery::MeshSnapshot& mesh,
                                               const std::string& ns,
                                               const std::map<std::string, std::string>& labels) {
  std::vector<RouteRateLimit> out;
  for (const auto& route : policies.http_routes) {
    const RateLimitPolicy* p = RateLimitPolicyForRoute(policies, route);
    if (p == nullptr) continue;
    bool sends_here = false;
    for (const auto& rule : route.rules) {
      for (const auto& b : rule.backends) {
        if (b.namespace_ != ns || b.weight == 0) continue;
        auto it = mesh.services.find(discovery::ObjectKey(b.namespace_, b.name));
        if (it != mesh.services.end() && !it->second.selector.empty() &&
            LabelsMatch(it->second.selector, labels)) {
          sends_here = true;
        }
      }
    }
    if (sends_here) out.push_back({&route, p});
  }
  return out;
}

MtlsMode MtlsModeFor(const PolicySet& policies, const std::string& ns,
                     const std::map<std::string, std::string>& labels) {
  const MTLSPolicy* ns_wide = nullptr;
  const MTLSPolicy* mesh_wide = nullptr;
  for (const auto& p : policies.mtls_policies) {
    if (p.meta.namespace_ == ns) {
      if (!p.selector.empty() && LabelsMatch(p.selector, labels)) return p.mode;
      if (p.selector.empty() && ns_wide == nullptr) ns_wide = &p;
    }
    if (p.meta.namespace_ == policies.root_namespace && p.selector.empty() && mesh_wide == nullptr) mesh_wide = &p;
  }
  if (ns_wide != nullptr) return ns_wide->mode;
  if (mesh_wide != nullptr) return mesh_wide->mode;
  return MtlsMode::kPermissive;
}

std::vector<const AuthorizationPolicy*> AuthorizationPoliciesFor(
    const PolicySet& policies, const discovery::MeshSnapshot& mesh, const std::string& ns,
    const std::map<std::string, std::string>& labels) {
  std::vector<const AuthorizationPolicy*> out;
  for (const auto& p : policies.authorization_policies) {
    bool in_scope = p.meta.namespace_ == ns || p.meta.namespace_ == policies.root_namespace;
    if (!in_scope) continue;
    bool applies = false;
    if (!p.targets.empty()) {
      applies = p.meta.namespace_ == ns && TargetsWorkload(p.targets, mesh, ns, labels);
    } else if (!p.selector.empty()) {
      applies = p.meta.namespace_ == ns && LabelsMatch(p.selector, labels);
    } else {
      applies = true;  // namespace-wide, or mesh-wide from the root namespace
    }
    if (applies) out.push_back(&p);
  }
  return out;
}

const RateLimitPolicy* RateLimitPolicyFor(const PolicySet& policies, const discovery::MeshSnapshot& mesh,
                                          const std::string& ns,
                                          const std::map<std::string, std::string>& labels) {
  const RateLimitPolicy* ns_wide = nullptr;
  const RateLimitPolicy* mesh_wide = nullptr;
  for (const auto& p : policies.rate_limit_policies) {
    if (p.meta.namespace_ == ns) {
      if (!p.targets.empty() && TargetsWorkload(p.targets, mesh, ns, labels)) return &p;
      if (p.targets.empty() && ns_wide == nullptr) ns_wide = &p;
    }
    if (p.meta.namespace_ == policies.root_namespace && p.targets.empty() && mesh_wide == nullptr) mesh_wide = &p;
  }
  return ns_wide != nullptr ? ns_wide : mesh_wide;
}

}  // namespace weft::policy
