// Endpoint selection for one cluster on one worker: round robin and least
// request (power of two choices over in-flight requests, Envoy's default
// for LEAST_REQUEST). Each worker keeps its own state per cluster, so no
// locks; the inputs are the cluster's endpoints and their in-flight counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace weft::proxy {

enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom };

class EndpointPicker {
 public:
  explicit EndpointPicker(uint64_t seed = 0x5eed) : rng_(seed) {}
  // An index into `in_flight` (one entry per endpoint; non-empty).
  size_t Pick(LbPolicy policy, const std::vector<uint32_t>& in_flight);
  uint64_t Random() { return rng_(); }

 private:
  size_t next_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace weft::proxy
