// Derives a proxy's identity from its xDS Node on the plaintext development
// port (DESIGN.md §5): namespace from the Envoy-style node id
// `sidecar~IP~POD.NS~NS.svc.cluster.local` or the metadata key NAMESPACE,
// service account from SERVICE_ACCOUNT, both defaulting to "default". The
// kind is "sidecar" for Envoy and weft-proxy, "proxyless" otherwise.
#pragma once

#include "envoy/config/core/v3/base.pb.h"
#include "policy/proxy_resources.h"

namespace weft::server {

policy::ProxyIdentity IdentityFromNode(const envoy::config::core::v3::Node& node);

}  // namespace weft::server
