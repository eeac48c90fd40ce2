// Trailer fields of chunked messages (RFC 9112 §7.1.2) in the HTTP/1.1 codec:
// parsed apart from the head in any split of the input, re-serialized after
// the last chunk, bounded like the head, and never mistaken for framing.
#include <catch2/catch.hpp>
#include <string>

#include "proxy/http_codec.h"

namespace weft::proxy {
namespace {

// Feeds `wire` in pieces of `step` bytes until one message completes.
absl::StatusOr<HttpParser::Events> FeedOne(HttpParser& p, const std::string& wire, size_t step) {
  HttpParser::Events all;
  size_t pos = 0;
  std::string pending;
  while (!all.message_complete) {
    if (pending.empty()) {
      if (pos >= wire.size()) return absl::UnavailableError("message incomplete");
      pending = wire.substr(pos, step);
      pos += pending.size();
    }
    auto n = p.Feed(pending);
    if (!n.ok()) return n.status();
    pending.erase(0, *n);
    all.body += p.events().body;
    p.events().body.clear();
    all.message_complete = p.events().message_complete;
    all.trailers = p.events().trailers;
  }
  return all;
}

TEST_CASE("chunked response trailers are parsed apart from the head in any split", "[proxy][http]") {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status, x-checksum\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\nX-Checksum: abc123\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{3}, size_t{7}, wire.size()}) {
    HttpParser p(HttpParser::Kind::kResponse);
    auto ev = FeedOne(p, wire, step);
    REQUIRE(ev.ok());
    CHECK(ev->body == "hello world");
    REQUIRE(ev->trailers.size() == 2);
    CHECK(ev->trailers[0] == std::make_pair(std::string("grpc-status"), std::string("0")));
    CHECK(ev->trailers[1] == std::make_pair(std::string("X-Checksum"), std::string("abc123")));
    // The head keeps only its own fields.
    CHECK(p.head().headers.size() == 2);
    CHECK_FALSE(p.head().Get("grpc-status").has_value());
  }
}

TEST_CASE("chunked request trailers, then a pipelined request without any", "[proxy][http]") {
  const std::string wire =
      "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nx-digest: sha-256=xyz\r\n\r\n"
      "POST /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1\r\nz\r\n0\r\n\r\n";
  HttpParser p(HttpParser::Kind::kRequest);
  auto n = p.Feed(wire);
  REQUIRE(n.ok());
  REQUIRE(p.events().message_complete);
  REQUIRE(p.events().trailers.size() == 1);
  CHECK(p.events().trailers[0].second == "sha-256=xyz");
  std::string rest = wire.substr(*n);
  p.Reset();
  auto m = p.Feed(rest);
  REQUIRE(m.ok());
  REQUIRE(p.events().message_complete);
  CHECK(p.head().target == "/two");
  CHECK(p.events().trailers.empty());
  CHECK(p.head().headers.size() == 2);
}

TEST_CASE("LastChunk re-serializes trailers and drops fields that cannot be trailers", "[proxy][http]") {
  CHECK(LastChunk({}) == "0\r\n\r\n");
  HeaderList t = {{"grpc-status", "0"},
                  {"Content-Length", "99"},
                  {"transfer-encoding", "chunked"},
                  {"Host", "evil"},
                  {"x-checksum", "abc"}};
  CHECK(LastChunk(t) == "0\r\ngrpc-status: 0\r\nx-checksum: abc\r\n\r\n");

  // What LastChunk writes parses back to the same trailers.
  const std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + ChunkHeader(2) +
                           "ok\r\n" + LastChunk({{"grpc-status", "0"}, {"grpc-message", "fine"}});
  HttpParser p(HttpParser::Kind::kResponse);
  REQUIRE(p.Feed(wire).ok());
  REQUIRE(p.events().message_complete);
  CHECK(p.events().trailers == HeaderList{{"grpc-status", "0"}, {"grpc-message", "fine"}});
}

TEST_CASE("hostile trailers: bad names, too many, too large", "[proxy][http]") {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n";
  {
    HttpParser p(HttpParser::Kind::kResponse);
    auto r = p.Feed(head + "bad name: x\r\n\r\n");
    CHECK_FALSE(r.ok());
  }
  {
    HttpParser p(HttpParser::Kind::kResponse, HttpLimits{.max_head_bytes = 64 * 1024, .max_headers = 4});
    std::string many = head;
    for (int i = 0; i < 5; ++i) many += "t" + std::to_string(i) + ": v\r\n";
    auto r = p.Feed(many + "\r\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("too many trailers") != std::string::npos);
  }
  {
    HttpParser p(HttpParser::Kind::kResponse, HttpLimits{.max_head_bytes = 256, .max_headers = 100});
    auto r = p.Feed(head + "big: " + std::string(1000, 'x') + "\r\n\r\n");
    CHECK_FALSE(r.ok());
  }
}

}  // namespace
}  // namespace weft::proxy
