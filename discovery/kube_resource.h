// The Kubernetes resource types Weft watches (DESIGN.md §4) and the REST
// paths that serve them. Used by the watchers, the status writer and the
// registry.
#pragma once

#include <string>
#include <vector>

namespace weft::discovery {

struct KubeResource {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1"
  std::string kind;
  std::string plural;
  bool namespaced = true;
  bool status_subresource = false;  // the weft.io kinds and HTTPRoute: Weft writes their status

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // /api/v1/services, /apis/weft.io/v1alpha1/trafficpolicies (all namespaces)
  std::string CollectionPath() const;
  // .../namespaces/NS/PLURAL/NAME, or .../PLURAL/NAME when cluster-scoped
  std::string ItemPath(const std::string& ns, const std::string& name) const;
};

// Every watched type: Namespaces first (the namespace selector needs them),
// then Services, EndpointSlices, Pods, HTTPRoutes and the weft.io kinds.
const std::vector<KubeResource>& WatchedKubeResources();

// The watched type of `kind` ("TrafficPolicy"); nullptr if not watched.
const KubeResource* FindKubeResource(const std::string& kind);

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& value);

}  // namespace weft::discovery
