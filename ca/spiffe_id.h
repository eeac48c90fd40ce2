// A workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`
// (DESIGN.md §5). Authenticators produce one; the signer puts it in the
// leaf's URI SAN.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace weft::ca {

struct SpiffeId {
  std::string trust_domain;
  std::string namespace_;
  std::string service_account;

  std::string ToString() const;
  // Parses the exact Weft form; anything else is INVALID_ARGUMENT.
  static absl::StatusOr<SpiffeId> Parse(absl::string_view uri);

  bool operator==(const SpiffeId& o) const {
    return trust_domain == o.trust_domain && namespace_ == o.namespace_ &&
           service_account == o.service_account;
  }
  bool operator!=(const SpiffeId& o) const { return !(*this == o); }
};

// A Kubernetes-style name segment: [a-z0-9]([-a-z0-9.]*[a-z0-9])?, 1..253.
bool IsValidIdentitySegment(absl::string_view s);

}  // namespace weft::ca
