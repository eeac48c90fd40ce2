#include "proxy/outlier_detector.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_join.h"

namespace weft::proxy {
namespace {

uint64_t Millis(const google::protobuf::Duration& d) {
  return static_cast<uint64_t>(d.seconds()) * 1000 + static_cast<uint64_t>(d.nanos()) / 1000000;
}

bool IsGatewayFailure(int status) { return status == 0 || status == 502 || status == 503 || status == 504; }

}  // namespace

absl::StatusOr<OutlierConfig> ParseOutlierDetection(const envoy::config::cluster::v3::OutlierDetection& od,
                                                    const std::string& path) {
  OutlierConfig c;
  std::vector<std::string> errors;
  if (od.has_consecutive_5xx()) c.consecutive_5xx = od.consecutive_5xx().value();
  if (od.has_enforcing_consecutive_5xx())
    c.enforcing_consecutive_5xx = od.enforcing_consecutive_5xx().value();
  if (od.has_consecutive_gateway_failure())
    c.consecutive_gateway_failure = od.consecutive_gateway_failure().value();
  if (od.has_enforcing_consecutive_gateway_failure()) {
    c.enforcing_consecutive_gateway_failure = od.enforcing_consecutive_gateway_failure().value();
  }
  if (od.has_interval()) c.interval_ms = Millis(od.interval());
  if (od.has_base_ejection_time()) c.base_ejection_time_ms = Millis(od.base_ejection_time());
  if (od.has_max_ejection_time()) c.max_ejection_time_ms = Millis(od.max_ejection_time());
  if (od.has_max_ejection_percent()) c.max_ejection_percent = od.max_ejection_percent().value();
  if (c.interval_ms == 0) errors.push_back(path + ".interval: must be positive");
  if (c.base_ejection_time_ms == 0) errors.push_back(path + ".base_ejection_time: must be positive");
  if (c.max_ejection_percent > 100) errors.push_back(path + ".max_ejection_percent: must be at most 100");
  if (c.enforcing_consecutive_5xx > 100 || c.enforcing_consecutive_gateway_failure > 100) {
    errors.push_back(path + ".enforcing_consecutive_*: must be at most 100");
  }
  // Detectors weft-proxy does not run must not look enforced.
  if ((od.has_enforcing_success_rate() && od.enforcing_success_rate().value() > 0) ||
      od.has_success_rate_minimum_hosts() || od.has_success_rate_request_volume() ||
      od.has_success_rate_stdev_factor()) {
    errors.push_back(path + ": the success-rate detector is not supported");
  }
  if ((od.has_enforcing_failure_percentage() && od.enforcing_failure_percentage().value() > 0) ||
      (od.has_enforcing_failure_percentage_local_origin() &&
       od.enforcing_failure_percentage_local_origin().value() > 0)) {
    errors.push_back(path + ": the failure-percentage detector is not supported");
  }
  if (od.split_external_local_origin_errors()) {
    errors.push_back(path + ".split_external_local_origin_errors: not supported");
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return c;
}

void OutlierDetector::Refresh(Host& h, common::Clock::TimePoint now) {
  if (h.ejected && now >= h.until) {
    h.ejected = false;
    h.decay_from = h.until;
  }
  if (!h.ejected && h.ejections > 0 && h.interval_ms > 0) {
    const auto healthy = std::chrono::duration_cast<std::chrono::milliseconds>(now - h.decay_from).count();
    const uint64_t steps = healthy > 0 ? static_cast<uint64_t>(healthy) / h.interval_ms : 0;
    if (steps > 0) {
      h.ejections = static_cast<uint32_t>(h.ejections > steps ? h.ejections - steps : 0);
      h.decay_from += std::chrono::milliseconds(steps * h.interval_ms);
    }
  }
}

size_t OutlierDetector::EjectedLocked(common::Clock::TimePoint now) {
  size_t n = 0;
  for (auto& [key, h] : hosts_) {
    Refresh(h, now);
    if (h.ejected) ++n;
  }
  return n;
}

bool OutlierDetector::Record(const OutlierConfig& config, const std::string& host, int status, size_t hosts,
                             uint32_t random) {
  const auto now = clock_.Now();
  absl::MutexLock lock(&mu_);
  Host& h = hosts_[host];
  h.interval_ms = config.interval_ms;
  Refresh(h, now);
  if (h.ejected) return false;  // a late answer from an ejected host changes nothing
  if (status != 0 && status < 500) {
    h.consecutive_5xx = 0;
    h.consecutive_gateway = 0;
    return false;
  }
  ++h.consecutive_5xx;
  if (IsGatewayFailure(status)) {
    ++h.consecutive_gateway;
  } else {
    h.consecutive_gateway = 0;
  }
  const bool by_5xx = config.consecutive_5xx > 0 && h.consecutive_5xx >= config.consecutive_5xx &&
                      random < config.enforcing_consecutive_5xx;
  const bool by_gateway = config.consecutive_gateway_failure > 0 &&
                          h.consecutive_gateway >= config.consecutive_gateway_failure &&
                          random < config.enforcing_consecutive_gateway_failure;
  if (!by_5xx && !by_gateway) return false;
  // Reaching a threshold resets the counters, ejected or not (Envoy's).
  h.consecutive_5xx = 0;
  h.consecutive_gateway = 0;
  const size_t ejected = EjectedLocked(now);
  const size_t total = std::max(hosts, ejected + 1);
  if (ejected > 0 && (ejected + 1) * 100 > total * config.max_ejection_percent) return false;
  ++h.ejections;
  h.ejected = true;
  const uint64_t ms = std::min(config.base_ejection_time_ms * h.ejections,
                               std::max(config.max_ejection_time_ms, config.base_ejection_time_ms));
  h.until = now + std::chrono::milliseconds(ms);
  return true;
}

bool OutlierDetector::IsEjected(const std::string& host) {
  const auto now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return false;
  Refresh(it->second, now);
  return it->second.ejected;
}

size_t OutlierDetector::EjectedCount() {
  const auto now = clock_.Now();
  absl::MutexLock lock(&mu_);
  return EjectedLocked(now);
}

uint32_t OutlierDetector::Ejections(const std::string& host) {
  const auto now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return 0;
  Refresh(it->second, now);
  return it->second.ejections;
}

}  // namespace weft::proxy
