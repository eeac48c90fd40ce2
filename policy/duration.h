// Kubernetes / Gateway API duration strings ("500ms", "2s", "1m30s", "1h"):
// one to four <digits><unit> parts, units h, m, s, ms. Used by policy
// validation; the CRD schemas use the same pattern (kDurationPattern).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace weft::policy {

inline constexpr std::string_view kDurationPattern = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

// Milliseconds, or nullopt when `text` is not a valid duration.
std::optional<int64_t> ParseDurationMs(std::string_view text);

}  // namespace weft::policy
