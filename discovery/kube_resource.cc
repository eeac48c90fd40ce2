#include "discovery/kube_resource.h"

#include "absl/strings/str_cat.h"

namespace weft::discovery {

std::string KubeResource::CollectionPath() const {
  return group.empty() ? absl::StrCat("/api/", version, "/", plural)
                       : absl::StrCat("/apis/", group, "/", version, "/", plural);
}

std::string KubeResource::ItemPath(const std::string& ns, const std::string& name) const {
  const std::string base = group.empty() ? absl::StrCat("/api/", version) : absl::StrCat("/apis/", group, "/", version);
  if (!namespaced) return absl::StrCat(base, "/", plural, "/", name);
  return absl::StrCat(base, "/namespaces/", ns, "/", plural, "/", name);
}

const std::vector<KubeResource>& WatchedKubeResources() {
  static const std::vector<KubeResource> kResources = {
      {"", "v1", "Namespace", "namespaces", false, false},
      {"", "v1", "Service", "services", true, false},
      {"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false},
      {"", "v1", "Pod", "pods", true, false},
      {"gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, true},
      {"weft.io", "v1alpha1", "Workload", "workloads", true, true},
      {"weft.io", "v1alpha1", "TrafficPolicy", "trafficpolicies", true, true},
      {"weft.io", "v1alpha1", "AuthorizationPolicy", "authorizationpolicies", true, true},
      {"weft.io", "v1alpha1", "RateLimitPolicy", "ratelimitpolicies", true, true},
      {"weft.io", "v1alpha1", "MTLSPolicy", "mtlspolicies", true, true},
  };
  return kResources;
}

const KubeResource* FindKubeResource(const std::string& kind) {
  for (const KubeResource& r : WatchedKubeResources()) {
    if (r.kind == kind) return &r;
  }
  return nullptr;
}

std::string UrlEncode(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace weft::discovery
