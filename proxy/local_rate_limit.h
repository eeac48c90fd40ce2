// The local rate limit HTTP filter (envoy.filters.http.local_ratelimit) on
// weft-proxy's inbound chains. LocalRateLimitConfig is compiled once from
// the proto with the rest of ProxyConfig and is immutable; the token bucket
// it describes is run-time state, so it lives outside the configuration
// snapshot in a TokenBucket that the data path keeps per filter chain
// (shared by all workers) across configuration updates that leave the
// limit unchanged.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb.h"
#include "proxy/http_codec.h"

namespace weft::proxy {

class LocalRateLimitConfig;
using LocalRateLimitConfigConstSharedPtr = std::shared_ptr<const LocalRateLimitConfig>;

class LocalRateLimitConfig {
 public:
  // Fields that would change the behaviour and are not implemented
  // (descriptors, per-connection buckets, ...) are errors.
  static absl::StatusOr<LocalRateLimitConfigConstSharedPtr> Create(
      const envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit& proto);

  // False for a filter-level config without token_bucket: only routes'
  // per-filter configs limit then.
  bool has_bucket() const { return has_bucket_; }
  uint32_t max_tokens() const { return max_tokens_; }
  uint32_t tokens_per_fill() const { return tokens_per_fill_; }
  std::chrono::milliseconds fill_interval() const { return fill_interval_; }
  int status() const { return status_; }
  // Percent of requests the filter looks at / enforces on (Envoy's defaults:
  // a filter without filter_enabled is off).
  uint32_t enabled_percent() const { return enabled_percent_; }
  uint32_t enforced_percent() const { return enforced_percent_; }
  // Headers for the limited responses; retry-after is always among them.
  const HeaderList& response_headers() const { return response_headers_; }
  bool has_retry_after() const { return has_retry_after_; }
  // Identifies the bucket's shape: a bucket is kept across updates with the same key.
  std::string BucketKey() const;

 private:
  bool has_bucket_ = true;
  uint32_t max_tokens_ = 0;
  uint32_t tokens_per_fill_ = 1;
  std::chrono::milliseconds fill_interval_{1000};
  int status_ = 429;
  uint32_t enabled_percent_ = 0;
  uint32_t enforced_percent_ = 0;
  HeaderList response_headers_;
  bool has_retry_after_ = false;
};

// A token bucket with discrete refills, Envoy's: it starts full
// (max_tokens); every fill_interval adds tokens_per_fill, up to max_tokens.
// Thread-safe; time comes from the caller (an injected clock).
class TokenBucket {
 public:
  using TimePoint = common::Clock::TimePoint;
  TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill, std::chrono::milliseconds fill_interval,
              TimePoint now);

  // Takes a token if there is one.
  bool TryConsume(TimePoint now);
  // Whole seconds (at least 1) until the next refill, for retry-after.
  uint64_t SecondsUntilRefill(TimePoint now);

 private:
  void RefillLocked(TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint32_t max_tokens_;
  const uint32_t tokens_per_fill_;
  const std::chrono::milliseconds fill_interval_;
  absl::Mutex mu_;
  uint32_t tokens_ ABSL_GUARDED_BY(mu_);
  TimePoint last_fill_ ABSL_GUARDED_BY(mu_);
};
using TokenBucketSharedPtr = std::shared_ptr<TokenBucket>;

}  // namespace weft::proxy
