#include "policy/duration.h"

namespace weft::policy {

std::optional<int64_t> ParseDurationMs(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  int parts = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + (text[i] - '0');
      ++i;
    }
    size_t digits = i - start;
    if (digits == 0 || digits > 5 || i == text.size()) return std::nullopt;
    int64_t unit_ms = 0;
    if (text.substr(i, 2) == "ms") {
      unit_ms = 1;
      i += 2;
    } else if (text[i] == 'h') {
      unit_ms = 3600 * 1000;
      ++i;
    } else if (text[i] == 'm') {
      unit_ms = 60 * 1000;
      ++i;
    } else if (text[i] == 's') {
      unit_ms = 1000;
      ++i;
    } else {
      return std::nullopt;
    }
    total += value * unit_ms;
    if (++parts > 4) return std::nullopt;
  }
  return total;
}

}  // namespace weft::policy
