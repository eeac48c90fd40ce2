// Request mirroring (route request_mirror_policies): the pieces of the
// fire-and-forget shadow request that do not need the data path's state —
// the shadow Host and sending a whole request on a connection and reading
// (and dropping) the response. proxy_server.cc picks the mirror cluster's
// endpoint and spawns the copy; its outcome never touches the main request.
#pragma once

#include <string>
#include <string_view>

#include "proxy/byte_stream.h"

namespace weft::proxy {

// Envoy's shadow host: "-shadow" appended to the host, before any port
// ("orders:8080" → "orders-shadow:8080").
std::string ShadowHost(std::string_view host);

// Writes `request` (head and whole body) on `conn` and reads the response
// to its end. Returns its status, or 0 when the exchange failed. The caller
// bounds it with a deadline on the socket.
asio::awaitable<int> SendAndDrain(ByteStream& conn, std::string_view request, bool is_head);

}  // namespace weft::proxy
