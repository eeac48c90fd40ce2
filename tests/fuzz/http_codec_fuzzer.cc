// libFuzzer target: weft-proxy's HTTP/1.1 codec on bytes from the network.
// The first byte picks requests or responses (and HEAD) and the size of the
// pieces the stream arrives in; pipelined messages are parsed one after the
// other, then EOF. Every parsed head is also put through hop-by-hop
// stripping and re-serialization, as the proxy forwards it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/http_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using weft::proxy::HttpParser;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool response = (mode & 1) != 0;
  const size_t piece = 1 + (mode >> 2) % 64;
  weft::proxy::HttpLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  HttpParser parser(response ? HttpParser::Kind::kResponse : HttpParser::Kind::kRequest, limits);
  parser.SetRequestWasHead((mode & 2) != 0);
  int messages = 0;
  while (!stream.empty() && messages < 64) {
    absl::StatusOr<size_t> used = parser.Feed(stream.substr(0, std::min(piece, stream.size())));
    if (!used.ok()) return 0;
    stream.remove_prefix(*used);
    if (parser.events().head_complete) {
      weft::proxy::HttpHead head = parser.head();
      weft::proxy::StripHopByHop(head);
      (void)head.Get("host");
      if (response) {
        (void)weft::proxy::SerializeResponseHead(head, weft::proxy::BodyFraming::kChunked, 0,
                                                 head.keep_alive);
      } else {
        (void)weft::proxy::SerializeRequestHead(head, head.target, weft::proxy::BodyFraming::kLength, 3,
                                                true);
      }
      parser.events().head_complete = false;
    }
    parser.events().body.clear();
    if (parser.events().message_complete) {
      ++messages;
      parser.Reset();
    } else if (*used == 0) {
      return 0;  // no progress without a complete message: the parser is stuck
    }
  }
  (void)parser.FeedEof();
  return 0;
}
