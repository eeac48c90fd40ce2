#include "proxy/load_balancer.h"

namespace weft::proxy {

size_t EndpointPicker::Pick(LbPolicy policy, const std::vector<uint32_t>& in_flight) {
  const size_t n = in_flight.size();
  if (n <= 1) return 0;
  switch (policy) {
    case LbPolicy::kRoundRobin: return next_++ % n;
    case LbPolicy::kRandom: return rng_() % n;
    case LbPolicy::kLeastRequest: {
      size_t a = rng_() % n;
      size_t b = rng_() % (n - 1);
      if (b >= a) ++b;  // two distinct candidates
      return in_flight[b] < in_flight[a] ? b : a;
    }
  }
  return 0;
}

}  // namespace weft::proxy
