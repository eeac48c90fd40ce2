#include "ca/spiffe_id.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace weft::ca {

bool IsValidIdentitySegment(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

std::string SpiffeId::ToString() const {
  return absl::StrCat("spiffe://", trust_domain, "/ns/", namespace_, "/sa/", service_account);
}

absl::StatusOr<SpiffeId> SpiffeId::Parse(absl::string_view uri) {
  constexpr absl::string_view kScheme = "spiffe://";
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError(absl::StrCat("not a SPIFFE ID: \"", uri, "\""));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kScheme.size()), '/');
  if (parts.size() != 5 || parts[1] != "ns" || parts[3] != "sa" || !IsValidIdentitySegment(parts[0]) ||
      !IsValidIdentitySegment(parts[2]) || !IsValidIdentitySegment(parts[4])) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a Weft SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>): \"", uri, "\""));
  }
  return SpiffeId{std::string(parts[0]), std::string(parts[2]), std::string(parts[4])};
}

}  // namespace weft::ca
