// The raw bidirectional byte tunnel of an upgraded HTTP/1.1 connection
// (WebSocket after "101 Switching Protocols"): bytes are copied both ways
// between the downstream and the upstream stream, uninterpreted. When one
// side ends its stream (TCP FIN; over TLS, close_notify) the other side's
// write half is shut down and the opposite direction keeps flowing; the
// tunnel ends, closing both, when both directions have ended, on the first
// error (a reset, a TLS stream cut without close_notify), or when nothing
// moved for the idle timeout. The data path runs one per upgraded request,
// on the request's worker.
#pragma once

#include <cstdint>
#include <string>

#include "common/metrics.h"
#include "proxy/byte_stream.h"

namespace weft::proxy {

struct TunnelResult {
  uint64_t downstream_to_upstream = 0;  // bytes
  uint64_t upstream_to_downstream = 0;
  bool idle_timeout = false;  // ended by the idle timeout
};

struct TunnelOptions {
  // Bytes already read past the HTTP heads, sent first: what the client sent
  // after its request head, what the server sent after its 101.
  std::string downstream_early;
  std::string upstream_early;
  uint64_t idle_timeout_ms = 0;  // 0: none
  // Each direction's bytes as they pass (optional).
  common::Counter* downstream_to_upstream_bytes = nullptr;
  common::Counter* upstream_to_downstream_bytes = nullptr;
};

// Returns when the tunnel is over; both streams are closed then.
asio::awaitable<TunnelResult> RunTunnel(ByteStream& downstream, ByteStream& upstream, TunnelOptions options);

}  // namespace weft::proxy
