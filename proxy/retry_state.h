// Envoy's retry decisions for one outbound request under a route's
// retry_policy: which failed attempts are retried (retry_on) and how long to
// back off before the next one. Pure functions; the data path
// (proxy_server.cc) calls them between attempts, and only for requests whose
// whole body is still in hand (docs/proxy.md, "Retries and timeouts").
#pragma once

#include <cstdint>

#include "proxy/route_table.h"

namespace weft::proxy {

// How one upstream attempt ended.
enum class AttemptOutcome {
  kConnectFailure,  // no connection (refused, connect timeout, TLS handshake)
  kReset,           // the connection closed or broke before a response head
  kPerTryTimeout,   // no response head within per_try_timeout
  kResponse,        // a response head with a status
};

// True when `policy` retries an attempt that ended with `outcome` (and
// `status` for kResponse).
bool ShouldRetry(const RetryPolicy& policy, AttemptOutcome outcome, int status);

// Back-off before retry number `retry` (1 = the first retry): fully jittered
// exponential, a uniform pick in [0, min(base * 2^(retry-1), max)] from
// `random`.
uint64_t RetryBackoffMs(const RetryPolicy& policy, uint32_t retry, uint64_t random);

}  // namespace weft::proxy
