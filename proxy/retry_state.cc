#include "proxy/retry_state.h"

#include <algorithm>

namespace weft::proxy {

bool ShouldRetry(const RetryPolicy& p, AttemptOutcome outcome, int status) {
  switch (outcome) {
    case AttemptOutcome::kConnectFailure:
      return p.on_5xx || p.on_gateway_error || p.on_reset || p.on_connect_failure;
    case AttemptOutcome::kReset:
    case AttemptOutcome::kPerTryTimeout:
      // Envoy counts a reset and a per-try timeout as the 5xx (503/504) they
      // turn into.
      return p.on_5xx || p.on_gateway_error || p.on_reset;
    case AttemptOutcome::kResponse:
      if (p.on_5xx && status >= 500 && status <= 599) return true;
      if (p.on_gateway_error && (status == 502 || status == 503 || status == 504)) return true;
      if (p.on_retriable_4xx && status == 409) return true;
      return std::find(p.retriable_status_codes.begin(), p.retriable_status_codes.end(),
                       static_cast<uint32_t>(status)) != p.retriable_status_codes.end();
  }
  return false;
}

uint64_t RetryBackoffMs(const RetryPolicy& p, uint32_t retry, uint64_t random) {
  uint64_t ceiling = p.base_interval_ms;
  for (uint32_t i = 1; i < retry && ceiling < p.max_interval_ms; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, std::max(p.max_interval_ms, p.base_interval_ms));
  return ceiling == 0 ? 0 : random % (ceiling + 1);
}

}  // namespace weft::proxy
