// The per-request metrics of weft-proxy's data path
// (weft_proxy_requests_total by direction, cluster and code, and
// weft_proxy_request_duration_seconds by direction), recorded through
// series pointers that each worker caches: the registry's lookup (a mutex,
// label vectors and string maps) then runs once per series, not once per
// request. One instance per worker thread; not thread-safe itself.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace weft::proxy {

class RequestStats {
 public:
  explicit RequestStats(common::MetricsRegistry& metrics) : metrics_(metrics) {}
  RequestStats(const RequestStats&) = delete;
  RequestStats& operator=(const RequestStats&) = delete;

  // `direction` is "inbound" or "outbound".
  void Record(absl::string_view direction, absl::string_view cluster, int status, double seconds);

 private:
  struct Direction {
    common::Histogram* latency = nullptr;
    // cluster -> (code, counter); few codes per cluster, so a vector.
    absl::flat_hash_map<std::string, std::vector<std::pair<int, common::Counter*>>> requests;
  };
  Direction& DirectionOf(absl::string_view direction);

  common::MetricsRegistry& metrics_;
  std::vector<std::pair<std::string, Direction>> directions_;
};

}  // namespace weft::proxy
