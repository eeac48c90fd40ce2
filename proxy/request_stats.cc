#include "proxy/request_stats.h"

namespace weft::proxy {

RequestStats::Direction& RequestStats::DirectionOf(absl::string_view direction) {
  for (auto& [name, d] : directions_) {
    if (name == direction) return d;
  }
  auto& [name, d] = directions_.emplace_back(std::string(direction), Direction{});
  d.latency =
      &metrics_.GetHistogram("weft_proxy_request_duration_seconds", "request latency through the proxy",
                             common::MetricsRegistry::LatencyBuckets(), {{"direction", name}});
  return d;
}

void RequestStats::Record(absl::string_view direction, absl::string_view cluster, int status,
                          double seconds) {
  Direction& d = DirectionOf(direction);
  auto it = d.requests.find(cluster);
  if (it == d.requests.end())
    it = d.requests.emplace(std::string(cluster), std::vector<std::pair<int, common::Counter*>>{}).first;
  common::Counter* counter = nullptr;
  for (const auto& [code, c] : it->second) {
    if (code == status) counter = c;
  }
  if (counter == nullptr) {
    counter = &metrics_.GetCounter("weft_proxy_requests_total",
                                   "HTTP requests by direction, cluster and response code",
                                   {{"cluster", std::string(cluster)},
                                    {"code", std::to_string(status)},
                                    {"direction", std::string(direction)}});
    it->second.emplace_back(status, counter);
  }
  counter->Inc();
  d.latency->Observe(seconds);
}

}  // namespace weft::proxy
