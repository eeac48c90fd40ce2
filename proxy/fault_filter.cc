#include "proxy/fault_filter.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_join.h"

namespace weft::proxy {

uint32_t PerMillion(const envoy::type::v3::FractionalPercent& p) {
  uint64_t scale = 10000;  // HUNDRED
  if (p.denominator() == envoy::type::v3::FractionalPercent::TEN_THOUSAND) scale = 100;
  if (p.denominator() == envoy::type::v3::FractionalPercent::MILLION) scale = 1;
  return static_cast<uint32_t>(std::min<uint64_t>(uint64_t{p.numerator()} * scale, 1000000));
}

absl::StatusOr<FaultConfigConstSharedPtr> ParseFault(
    const envoy::extensions::filters::http::fault::v3::HTTPFault& f, const std::string& path) {
  auto out = std::make_shared<FaultConfig>();
  std::vector<std::string> errors;
  if (f.has_delay()) {
    const auto& d = f.delay();
    if (d.has_fixed_delay()) {
      out->delay_ms = static_cast<uint64_t>(d.fixed_delay().seconds()) * 1000 +
                      static_cast<uint64_t>(d.fixed_delay().nanos()) / 1000000;
    } else {
      errors.push_back(path + ".delay: only fixed_delay is supported");
    }
    // Envoy: an absent percentage is 0%.
    out->delay_per_million = d.has_percentage() ? PerMillion(d.percentage()) : 0;
  }
  if (f.has_abort()) {
    const auto& a = f.abort();
    if (a.error_type_case() == envoy::extensions::filters::http::fault::v3::FaultAbort::kHttpStatus) {
      if (a.http_status() < 200 || a.http_status() > 599) {
        errors.push_back(path + ".abort.http_status: must be in [200, 599]");
      }
      out->abort_status = static_cast<int>(a.http_status());
    } else {
      errors.push_back(path + ".abort: only http_status is supported");
    }
    out->abort_per_million = a.has_percentage() ? PerMillion(a.percentage()) : 0;
  }
  if (f.headers_size() > 0) errors.push_back(path + ".headers: not supported");
  if (f.downstream_nodes_size() > 0) errors.push_back(path + ".downstream_nodes: not supported");
  if (!f.upstream_cluster().empty()) errors.push_back(path + ".upstream_cluster: not supported");
  if (f.has_response_rate_limit()) errors.push_back(path + ".response_rate_limit: not supported");
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return FaultConfigConstSharedPtr(std::move(out));
}

FaultDecision DecideFault(const FaultConfig& config, uint64_t delay_random, uint64_t abort_random) {
  FaultDecision d;
  if (config.delay_ms && delay_random % 1000000 < config.delay_per_million) d.delay_ms = *config.delay_ms;
  if (config.abort_status && abort_random % 1000000 < config.abort_per_million)
    d.abort_status = *config.abort_status;
  return d;
}

}  // namespace weft::proxy
