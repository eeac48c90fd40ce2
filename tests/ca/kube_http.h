// The CA's injected Kubernetes HTTP call (ca/kube_secret_ca_store.h) over the
// discovery module's KubeClient, for the CA tests against the fake API server.
#pragma once

#include "ca/kube_secret_ca_store.h"
#include "discovery/kube_client.h"

namespace weft::ca::testing {

inline KubeHttp KubeHttpOver(discovery::KubeClient& client) {
  return [&client](const std::string& method, const std::string& path,
                   const std::string& body) -> absl::StatusOr<KubeHttpResponse> {
    auto r = client.Request(method, path, body, body.empty() ? "" : "application/json");
    if (!r.ok()) return r.status();
    return KubeHttpResponse{r->status, r->body};
  };
}

}  // namespace weft::ca::testing
