// What weftctl prints for each of weftd's admin endpoints (DESIGN.md §6):
// tables for people, or the server's JSON pretty-printed. Each function takes
// an endpoint's response body as weftd sent it and never throws or crashes on
// unexpected JSON: a missing or mistyped field prints as "-". Called by
// weftctl's commands (cli/weftctl_main.cc) and by the unit tests.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::cli {

enum class OutputFormat { kTable, kJson };

// GET /api/v1/proxies: one row per proxy (ID, identity, kind and, per
// resource type, its state with the versions), then every NACK with its
// message and the rejected resources' manifests.
absl::StatusOr<std::string> RenderProxies(absl::string_view body, OutputFormat format);

// GET /api/v1/services: one row per service port with its endpoints.
absl::StatusOr<std::string> RenderServices(absl::string_view body, OutputFormat format);

// GET /api/v1/policies: one row per policy with its status, then every
// validation error and warning as "file: kind ns/name: field: reason", then
// the manifests discovery could not read.
absl::StatusOr<std::string> RenderPolicies(absl::string_view body, OutputFormat format);

// GET /api/v1/certificates: the CA's mode and rotation, its roots and
// intermediate, and the recently issued certificates.
absl::StatusOr<std::string> RenderCertificates(absl::string_view body, OutputFormat format);

// The config-dump section names weftctl proxy-config --type accepts.
inline constexpr absl::string_view kConfigSections[] = {"listeners", "routes", "clusters", "endpoints",
                                                        "secrets"};
bool IsConfigSection(absl::string_view section);

// GET /api/v1/proxies/{id}/config: the whole Envoy config dump, or with a
// `section` from kConfigSections only that part of it (NotFound when the
// dump has no such part). Always JSON.
absl::StatusOr<std::string> RenderConfigDump(absl::string_view body, absl::string_view section);

// GET /healthz and /readyz (HTTP status and body of each) for `weftctl status`.
std::string RenderStatus(int healthz_status, absl::string_view healthz_body, int readyz_status,
                         absl::string_view readyz_body, OutputFormat format);

// The message of an error body `{"error": "..."}`; else the body itself,
// trimmed and shortened to one line.
std::string ServerErrorMessage(absl::string_view body);

// `id` percent-encoded for use as one path segment.
std::string EscapePathSegment(absl::string_view id);

}  // namespace weft::cli
