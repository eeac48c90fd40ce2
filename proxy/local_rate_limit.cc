#include "proxy/local_rate_limit.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::proxy {
namespace {

uint32_t Percent(const envoy::config::core::v3::RuntimeFractionalPercent& f) {
  using FP = envoy::type::v3::FractionalPercent;
  const auto& v = f.default_value();
  uint64_t n = v.numerator();
  switch (v.denominator()) {
    case FP::TEN_THOUSAND:
      n /= 100;
      break;
    case FP::MILLION:
      n /= 10000;
      break;
    default:
      break;
  }
  return static_cast<uint32_t>(std::min<uint64_t>(n, 100));
}

}  // namespace

absl::StatusOr<LocalRateLimitConfigConstSharedPtr> LocalRateLimitConfig::Create(
    const envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit& proto) {
  auto c = std::make_shared<LocalRateLimitConfig>();
  std::vector<std::string> errors;
  if (!proto.has_token_bucket()) {
    // Envoy: without a bucket the filter limits nothing by itself; routes'
    // typed_per_filter_config for it do (the per-route pattern).
    c->has_bucket_ = false;
  } else {
    const auto& b = proto.token_bucket();
    c->max_tokens_ = b.max_tokens();
    if (c->max_tokens_ == 0) errors.push_back("token_bucket.max_tokens: must be positive");
    if (b.has_tokens_per_fill()) c->tokens_per_fill_ = b.tokens_per_fill().value();
    if (c->tokens_per_fill_ == 0) errors.push_back("token_bucket.tokens_per_fill: must be positive");
    const auto& fi = b.fill_interval();
    c->fill_interval_ = std::chrono::milliseconds(fi.seconds() * 1000 + fi.nanos() / 1000000);
    if (c->fill_interval_ < std::chrono::milliseconds(50)) {
      errors.push_back("token_bucket.fill_interval: must be at least 50ms");
    }
  }
  if (proto.has_status() && proto.status().code() != 0) {
    c->status_ = static_cast<int>(proto.status().code());
    if (c->status_ < 400 || c->status_ > 599) errors.push_back("status: must be a 4xx or 5xx code");
  }
  if (proto.has_filter_enabled()) c->enabled_percent_ = Percent(proto.filter_enabled());
  if (proto.has_filter_enforced()) c->enforced_percent_ = Percent(proto.filter_enforced());
  for (const auto& h : proto.response_headers_to_add()) {
    std::string name = absl::AsciiStrToLower(h.header().key());
    if (name == "retry-after") c->has_retry_after_ = true;
    c->response_headers_.emplace_back(std::move(name), h.header().value());
  }
  if (proto.descriptors_size() > 0)
    errors.push_back("descriptors: not supported (one bucket per filter chain)");
  if (proto.local_rate_limit_per_downstream_connection()) {
    errors.push_back("local_rate_limit_per_downstream_connection: not supported");
  }
  if (proto.has_local_cluster_rate_limit()) errors.push_back("local_cluster_rate_limit: not supported");
  if (proto.request_headers_to_add_when_not_enforced_size() > 0) {
    errors.push_back("request_headers_to_add_when_not_enforced: not supported");
  }
  if (proto.enable_x_ratelimit_headers() != 0) errors.push_back("enable_x_ratelimit_headers: not supported");
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return LocalRateLimitConfigConstSharedPtr(std::move(c));
}

std::string LocalRateLimitConfig::BucketKey() const {
  return absl::StrCat(max_tokens_, "/", tokens_per_fill_, "/", fill_interval_.count());
}

TokenBucket::TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill,
                         std::chrono::milliseconds fill_interval, TimePoint now)
    : max_tokens_(max_tokens), tokens_per_fill_(tokens_per_fill), fill_interval_(fill_interval) {
  absl::MutexLock lock(&mu_);
  tokens_ = max_tokens;
  last_fill_ = now;
}

void TokenBucket::RefillLocked(TimePoint now) {
  if (now <= last_fill_) return;
  const auto fills = (now - last_fill_) / fill_interval_;
  if (fills <= 0) return;
  last_fill_ += fill_interval_ * fills;
  const uint64_t added = static_cast<uint64_t>(fills) * tokens_per_fill_;
  tokens_ = static_cast<uint32_t>(std::min<uint64_t>(max_tokens_, tokens_ + added));
}

bool TokenBucket::TryConsume(TimePoint now) {
  absl::MutexLock lock(&mu_);
  RefillLocked(now);
  if (tokens_ == 0) return false;
  --tokens_;
  return true;
}

uint64_t TokenBucket::SecondsUntilRefill(TimePoint now) {
  absl::MutexLock lock(&mu_);
  RefillLocked(now);
  auto left = last_fill_ + fill_interval_ - now;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
  return std::max<uint64_t>(1, static_cast<uint64_t>((std::max<int64_t>(ms, 0) + 999) / 1000));
}

}  // namespace weft::proxy
