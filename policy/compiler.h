// The policy compiler: a pure, deterministic function from the mesh, its
// policies and one proxy's identity to that proxy's xDS resources. No
// globals, clocks, I/O or locks; output sorted and stably named (Istio's
// conventions: outbound|PORT|SUBSET|HOST clusters, HOST:PORT API listeners).
// Called by the server for each distinct ProxyIdentity::CacheKey(), with the
// PolicySet that ValidatePolicies() built once for the same snapshot.
// Sidecars get outbound + inbound listeners (sidecar_compiler.h); proxyless
// gRPC clients get one API listener per service port.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "discovery/mesh_snapshot.h"
#include "policy/compiler_options.h"
#include "policy/policy_set.h"
#include "policy/proxy_resources.h"

namespace weft::policy {

absl::StatusOr<ProxyResources> Compile(const discovery::MeshSnapshot& mesh, const PolicySet& policies,
                                       const ProxyIdentity& proxy,
                                       const CompilerOptions& options = {});

// "name.namespace.svc.<cluster domain>"
std::string ServiceHost(const discovery::Service& service, const CompilerOptions& options);
// "outbound|PORT|SUBSET|HOST"
std::string OutboundClusterName(uint32_t port, const std::string& subset, const std::string& host);

}  // namespace weft::policy
