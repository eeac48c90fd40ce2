// Envoy's fault injection HTTP filter (envoy.filters.http.fault) on the
// outbound side: a fixed delay and an abort with an HTTP status, each on a
// fraction of requests (FractionalPercent), taken from the route's
// typed_per_filter_config["envoy.filters.http.fault"] (what weftd emits for
// a TrafficPolicy `fault`) or else from the listener's filter config. The
// delay is applied first, then the abort, before the request goes upstream.
// docs/proxy.md, "Fault injection".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/type/v3/percent.pb.h"

namespace weft::proxy {

struct FaultConfig {
  std::optional<uint64_t> delay_ms;
  uint32_t delay_per_million = 0;
  std::optional<int> abort_status;
  uint32_t abort_per_million = 0;
  bool active() const { return delay_ms.has_value() || abort_status.has_value(); }
};
using FaultConfigConstSharedPtr = std::shared_ptr<const FaultConfig>;

// A FractionalPercent as parts per million (numerator capped at the denominator).
uint32_t PerMillion(const envoy::type::v3::FractionalPercent& p);

// Errors name their place under `path`: header-controlled delays and
// aborts, gRPC aborts, header matches, downstream_nodes and rate limits are
// refused rather than ignored.
absl::StatusOr<FaultConfigConstSharedPtr> ParseFault(
    const envoy::extensions::filters::http::fault::v3::HTTPFault& f, const std::string& path);

// What to do to one request, from two uniform random numbers.
struct FaultDecision {
  uint64_t delay_ms = 0;  // 0: none
  int abort_status = 0;   // 0: none
};
FaultDecision DecideFault(const FaultConfig& config, uint64_t delay_random, uint64_t abort_random);

}  // namespace weft::proxy
