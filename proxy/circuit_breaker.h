// Envoy's circuit breakers for one upstream cluster (cluster
// circuit_breakers.thresholds, DEFAULT priority): limits on open
// connections, requests waiting for a connection, active requests and
// active retries, or a retry budget in place of the fixed retry limit. The
// counters are shared by every worker (atomics, no locks) and outlive
// configuration updates, so requests in flight stay counted when a new
// Cluster arrives. docs/proxy.md, "Circuit breaking".
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/circuit_breaker.pb.h"

namespace weft::proxy {

struct RetryBudget {
  double budget_percent = 20.0;  // of active plus pending requests (Envoy's default)
  uint32_t min_retry_concurrency = 3;
};

// Envoy's defaults when a cluster sets none.
struct CircuitBreakerThresholds {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
  std::optional<RetryBudget> retry_budget;  // replaces max_retries when set
};

// The DEFAULT-priority thresholds of `breakers`; fields weft-proxy cannot
// honour (HIGH priority, track_remaining, max_connection_pools,
// per_host_thresholds) are errors naming their place under `path`.
absl::StatusOr<CircuitBreakerThresholds> ParseCircuitBreakers(
    const envoy::config::cluster::v3::CircuitBreakers& breakers, const std::string& path);

enum class BreakerResource { kConnections = 0, kPending = 1, kRequests = 2, kRetries = 3 };
// "connections", "pending", "requests", "retries": the `kind` of the overflow metric.
const char* BreakerResourceName(BreakerResource r);

class CircuitBreaker {
 public:
  // Takes one unit of `r` when the cluster is under its limit; false
  // (overflow) otherwise. Each successful TryAcquire needs one Release.
  bool TryAcquire(BreakerResource r, const CircuitBreakerThresholds& t);
  void Release(BreakerResource r);
  uint64_t Active(BreakerResource r) const { return count_[Index(r)].load(std::memory_order_relaxed); }
  // The active-retry limit: max_retries, or with a retry budget
  // max(min_retry_concurrency, budget_percent of active + pending requests).
  uint64_t RetryLimit(const CircuitBreakerThresholds& t) const;

 private:
  static size_t Index(BreakerResource r) { return static_cast<size_t>(r); }
  uint64_t Limit(BreakerResource r, const CircuitBreakerThresholds& t) const;
  std::array<std::atomic<uint64_t>, 4> count_{};
};

// Holds one unit of a breaker resource for a scope.
class BreakerSlot {
 public:
  BreakerSlot() = default;
  BreakerSlot(CircuitBreaker* b, BreakerResource r) : breaker_(b), resource_(r) {}
  BreakerSlot(BreakerSlot&& o) noexcept : breaker_(o.breaker_), resource_(o.resource_) {
    o.breaker_ = nullptr;
  }
  BreakerSlot& operator=(BreakerSlot&& o) noexcept {
    if (this != &o) {
      Reset();
      breaker_ = o.breaker_;
      resource_ = o.resource_;
      o.breaker_ = nullptr;
    }
    return *this;
  }
  BreakerSlot(const BreakerSlot&) = delete;
  BreakerSlot& operator=(const BreakerSlot&) = delete;
  ~BreakerSlot() { Reset(); }
  void Reset() {
    if (breaker_ != nullptr) breaker_->Release(resource_);
    breaker_ = nullptr;
  }
  // Takes a unit when under the limit; false on overflow (nothing held).
  static std::optional<BreakerSlot> Take(CircuitBreaker& b, BreakerResource r,
                                         const CircuitBreakerThresholds& t) {
    if (!b.TryAcquire(r, t)) return std::nullopt;
    return BreakerSlot(&b, r);
  }

 private:
  CircuitBreaker* breaker_ = nullptr;
  BreakerResource resource_ = BreakerResource::kRequests;
};

}  // namespace weft::proxy
