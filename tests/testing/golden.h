// Helpers for golden tests of compiled xDS: a stable text rendering of a
// proxy's resources (JSON with proto field names, each resource headed by
// its type, name and source map) and file reading.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "policy/proxy_resources.h"

namespace weft::testing {

// "### <type> <name>\n# sources: ...\n<json>" for every resource, sorted by
// type URL and name; an error when a resource cannot be printed as JSON.
absl::StatusOr<std::string> RenderResources(const policy::ProxyResources& resources);

// Parses tests/policy/golden/<golden>/input.yaml, validates its policies
// and compiles it for a sidecar with this identity (the proxy tests use the
// policy golden inputs as their configurations).
absl::StatusOr<policy::ProxyResources> CompileGoldenForSidecar(const std::string& golden, const std::string& ns,
                                                               const std::string& service_account,
                                                               const std::string& ip);

// The whole file; "" when it cannot be read.
std::string ReadTextFile(const std::string& path);

}  // namespace weft::testing
