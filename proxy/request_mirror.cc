#include "proxy/request_mirror.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/http_codec.h"
#include "proxy/route_table.h"

namespace weft::proxy {

std::string ShadowHost(std::string_view host) {
  auto [name, port] = SplitHostPort(host);
  if (!port) return std::string(host) + "-shadow";
  return absl::StrCat(name, "-shadow:", *port);
}

asio::awaitable<int> SendAndDrain(ByteStream& conn, std::string_view request, bool is_head) {
  std::error_code ec;
  co_await conn.Write(request, ec);
  if (ec) co_return 0;
  HttpParser parser(HttpParser::Kind::kResponse);
  parser.SetRequestWasHead(is_head);
  std::vector<char> buf(16 * 1024);
  for (;;) {
    size_t n = co_await conn.ReadSome(asio::buffer(buf), ec);
    if (ec || n == 0) {
      if (parser.events().head_complete && parser.FeedEof().ok() && parser.events().message_complete) break;
      co_return 0;
    }
    std::string_view data(buf.data(), n);
    while (!data.empty()) {
      auto consumed = parser.Feed(data);
      if (!consumed.ok()) co_return 0;
      data.remove_prefix(*consumed);
      parser.events().body.clear();
      if (parser.events().message_complete) {
        if (parser.head().status >= 200) co_return parser.head().status;
        parser.Reset();  // an interim 1xx
        parser.SetRequestWasHead(is_head);
      } else if (*consumed == 0) {
        break;
      }
    }
  }
  co_return parser.head().status;
}

}  // namespace weft::proxy
