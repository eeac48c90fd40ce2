#include "proxy/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::proxy {

absl::StatusOr<CircuitBreakerThresholds> ParseCircuitBreakers(
    const envoy::config::cluster::v3::CircuitBreakers& breakers, const std::string& path) {
  CircuitBreakerThresholds out;
  std::vector<std::string> errors;
  bool seen_default = false;
  for (int i = 0; i < breakers.thresholds_size(); ++i) {
    const auto& t = breakers.thresholds(i);
    const std::string p = absl::StrCat(path, ".thresholds[", i, "]");
    if (t.priority() != envoy::config::core::v3::DEFAULT) {
      errors.push_back(p + ".priority: only DEFAULT is supported (weft-proxy has no request priorities)");
      continue;
    }
    if (seen_default) {
      errors.push_back(p + ": a second DEFAULT threshold");
      continue;
    }
    seen_default = true;
    if (t.has_max_connections()) out.max_connections = t.max_connections().value();
    if (t.has_max_pending_requests()) out.max_pending_requests = t.max_pending_requests().value();
    if (t.has_max_requests()) out.max_requests = t.max_requests().value();
    if (t.has_max_retries()) out.max_retries = t.max_retries().value();
    if (t.has_retry_budget()) {
      RetryBudget b;
      if (t.retry_budget().has_budget_percent()) b.budget_percent = t.retry_budget().budget_percent().value();
      if (t.retry_budget().has_min_retry_concurrency()) {
        b.min_retry_concurrency = t.retry_budget().min_retry_concurrency().value();
      }
      if (!(b.budget_percent >= 0.0 && b.budget_percent <= 100.0)) {
        errors.push_back(p + ".retry_budget.budget_percent: must be in [0, 100]");
      }
      out.retry_budget = b;
    }
    if (t.has_max_connection_pools()) errors.push_back(p + ".max_connection_pools: not supported");
    if (t.track_remaining()) errors.push_back(p + ".track_remaining: not supported");
  }
  if (breakers.per_host_thresholds_size() > 0) errors.push_back(path + ".per_host_thresholds: not supported");
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return out;
}

const char* BreakerResourceName(BreakerResource r) {
  switch (r) {
    case BreakerResource::kConnections:
      return "connections";
    case BreakerResource::kPending:
      return "pending";
    case BreakerResource::kRequests:
      return "requests";
    case BreakerResource::kRetries:
      return "retries";
  }
  return "unknown";
}

uint64_t CircuitBreaker::RetryLimit(const CircuitBreakerThresholds& t) const {
  if (!t.retry_budget) return t.max_retries;
  const double base =
      static_cast<double>(Active(BreakerResource::kRequests) + Active(BreakerResource::kPending));
  const auto budget = static_cast<uint64_t>(std::floor(base * t.retry_budget->budget_percent / 100.0));
  return std::max<uint64_t>(budget, t.retry_budget->min_retry_concurrency);
}

uint64_t CircuitBreaker::Limit(BreakerResource r, const CircuitBreakerThresholds& t) const {
  switch (r) {
    case BreakerResource::kConnections:
      return t.max_connections;
    case BreakerResource::kPending:
      return t.max_pending_requests;
    case BreakerResource::kRequests:
      return t.max_requests;
    case BreakerResource::kRetries:
      return RetryLimit(t);
  }
  return 0;
}

bool CircuitBreaker::TryAcquire(BreakerResource r, const CircuitBreakerThresholds& t) {
  const uint64_t limit = Limit(r, t);
  auto& c = count_[Index(r)];
  uint64_t cur = c.load(std::memory_order_relaxed);
  do {
    if (cur >= limit) return false;
  } while (!c.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void CircuitBreaker::Release(BreakerResource r) { count_[Index(r)].fetch_sub(1, std::memory_order_relaxed); }

}  // namespace weft::proxy
