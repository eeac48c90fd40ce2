// Envoy's outlier detection for one upstream cluster (cluster
// outlier_detection, consecutive-error detectors): a host that answers
// `consecutive_5xx` 5xx in a row, or `consecutive_gateway_failure`
// 502/503/504 in a row (connect failures, resets and timeouts count as
// both, as in Envoy without split_external_local_origin_errors), is ejected
// for base_ejection_time × the number of times it was ejected (capped by
// max_ejection_time), unless that would eject more than
// max_ejection_percent of the hosts (one host may always be ejected, as in
// Envoy). Every `interval` a host spends back in service takes one off its
// ejection count. Shared by the workers (one mutex per cluster), outlives
// configuration updates; time comes from an injected clock.
// docs/proxy.md, "Outlier detection".
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "envoy/config/cluster/v3/outlier_detection.pb.h"

namespace weft::proxy {

// Envoy's defaults for a present outlier_detection message.
struct OutlierConfig {
  uint32_t consecutive_5xx = 5;
  uint32_t enforcing_consecutive_5xx = 100;  // percent
  uint32_t consecutive_gateway_failure = 5;
  uint32_t enforcing_consecutive_gateway_failure = 0;
  uint64_t interval_ms = 10000;
  uint64_t base_ejection_time_ms = 30000;
  uint64_t max_ejection_time_ms = 300000;
  uint32_t max_ejection_percent = 10;
};

// Errors name their place under `path`; the success-rate and
// failure-percentage detectors and split local-origin errors are refused.
absl::StatusOr<OutlierConfig> ParseOutlierDetection(const envoy::config::cluster::v3::OutlierDetection& od,
                                                    const std::string& path);

class OutlierDetector {
 public:
  explicit OutlierDetector(common::Clock& clock) : clock_(clock) {}

  // One attempt's result on `host` ("ip:port"): an HTTP status, or 0 for a
  // connect failure, reset or timeout. `hosts` is the cluster's host count.
  // `random` in [0, 100) decides enforcement below 100%. True when this
  // result ejected the host.
  bool Record(const OutlierConfig& config, const std::string& host, int status, size_t hosts,
              uint32_t random = 0);
  bool IsEjected(const std::string& host);
  size_t EjectedCount();
  // How many times `host` is currently counted as ejected (the multiplier).
  uint32_t Ejections(const std::string& host);

 private:
  struct Host {
    uint32_t consecutive_5xx = 0;
    uint32_t consecutive_gateway = 0;
    uint32_t ejections = 0;  // the multiplier
    bool ejected = false;
    common::Clock::TimePoint until{};       // while ejected
    common::Clock::TimePoint decay_from{};  // back in service since (for the multiplier)
    uint64_t interval_ms = 10000;
  };
  // Returns hosts whose time is up and decays multipliers.
  void Refresh(Host& h, common::Clock::TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t EjectedLocked(common::Clock::TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  common::Clock& clock_;
  absl::Mutex mu_;
  std::unordered_map<std::string, Host> hosts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::proxy
