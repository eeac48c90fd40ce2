// Options of the policy compiler and of policy validation, set once by
// weftd from its flags (--trust-domain, --root-namespace) and passed to
// ValidatePolicies() and Compile().
#pragma once

#include <cstdint>
#include <string>

namespace weft::policy {

struct CompilerOptions {
  std::string cluster_domain = "cluster.local";
  std::string trust_domain = "cluster.local";
  // Where mesh-wide policies live (DESIGN.md §4).
  std::string root_namespace = "weft-system";
  // Sidecar listener addresses (DESIGN.md §3: weft-proxy's defaults).
  std::string outbound_address = "127.0.0.1";
  uint32_t outbound_port = 15001;
  std::string inbound_address = "0.0.0.0";
  uint32_t inbound_port = 15006;
  // ValidatePolicies() also builds the outbound Clusters and
  // ClusterLoadAssignments that are identical for every sidecar, once per
  // snapshot, so that Compile() only references them.
  bool precompile_shared = true;
  // The server compiles a snapshot that differs from the last only in
  // Workloads, Pods and EndpointSlices incrementally (policy/incremental.h);
  // false validates and compiles every snapshot whole.
  bool incremental = true;
};

}  // namespace weft::policy
