// The HTTP/1.1 codec (proxy/http_codec.h): streaming requests and
// responses, pipelining, chunked bodies, and malformed or hostile input
// (which must give an error, never a crash or a hang).
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "proxy/http_codec.h"

namespace weft::proxy {
namespace {

// Feeds `data` in pieces of `step` bytes; returns the bodies of complete
// messages, or the first error.
absl::StatusOr<std::vector<std::string>> FeedAll(HttpParser& p, const std::string& data, size_t step) {
  std::vector<std::string> bodies;
  std::string body;
  std::string pending;
  size_t pos = 0;
  while (pos < data.size() || !pending.empty()) {
    if (pending.empty()) {
      pending = data.substr(pos, step);
      pos += pending.size();
    }
    auto n = p.Feed(pending);
    if (!n.ok()) return n.status();
    pending.erase(0, *n);
    body += p.events().body;
    p.events().body.clear();
    if (p.events().message_complete) {
      bodies.push_back(body);
      body.clear();
      p.Reset();
    }
  }
  return bodies;
}

TEST_CASE("requests: keep-alive, pipelining and chunked bodies in any split", "[proxy][http]") {
  const std::string wire =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
  for (size_t step : {1, 2, 7, 64, 4096}) {
    INFO("step " << step);
    HttpParser p(HttpParser::Kind::kRequest);
    auto bodies = FeedAll(p, wire, step);
    REQUIRE(bodies.ok());
    CHECK(*bodies == std::vector<std::string>{"", "hello", "abcde"});
  }
  HttpParser p(HttpParser::Kind::kRequest);
  REQUIRE(
      p.Feed("GET http://b.shop:8080/x?y HTTP/1.0\r\nExpect: 100-continue\r\nX-A: 1\r\nx-a: 2\r\n\r\n").ok());
  CHECK(p.head().target == "http://b.shop:8080/x?y");
  CHECK(p.head().method == "GET");
  CHECK_FALSE(p.head().keep_alive);  // HTTP/1.0 without keep-alive
  CHECK(p.head().expect_continue);
  CHECK(p.head().Get("X-a") == "1");
}

TEST_CASE("TakeHead moves the fields out and keeps the rest for the next message", "[proxy][http]") {
  HttpParser p(HttpParser::Kind::kRequest);
  REQUIRE(
      p.Feed("POST /a HTTP/1.1\r\nHost: orders.shop.svc.cluster.local\r\nContent-Length: 2\r\n\r\nhi").ok());
  REQUIRE(p.events().message_complete);
  REQUIRE(p.head().Find("host") != nullptr);
  CHECK(*p.head().Find("HOST") == "orders.shop.svc.cluster.local");
  CHECK(p.head().Find("x-none") == nullptr);
  HttpHead taken = p.TakeHead();
  CHECK(taken.method == "POST");
  CHECK(taken.target == "/a");
  CHECK(taken.content_length == 2u);
  CHECK(taken.Get("host") == "orders.shop.svc.cluster.local");
  CHECK(taken.headers.size() == 2);
  // What the data path still reads from the parser after taking the fields.
  CHECK(p.head().headers.empty());
  CHECK(p.head().method == "POST");
  CHECK(p.head().keep_alive);
  CHECK(p.head().content_length == 2u);
  // The next message on the stream parses into a fresh head.
  p.Reset();
  REQUIRE(p.Feed("GET /b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n").ok());
  CHECK(p.head().method == "GET");
  CHECK_FALSE(p.head().content_length);
  CHECK(p.head().headers == HeaderList{{"Host", "x"}, {"X-A", "1"}});
}

TEST_CASE("responses: length, chunked, EOF-delimited and HEAD", "[proxy][http]") {
  HttpParser p(HttpParser::Kind::kResponse);
  REQUIRE(p.Feed("HTTP/1.1 200 OK\r\n\r\npartial").ok());
  CHECK(p.eof_delimited());
  CHECK(p.events().body == "partial");
  REQUIRE(p.FeedEof().ok());
  CHECK(p.events().message_complete);

  HttpParser h(HttpParser::Kind::kResponse);
  h.SetRequestWasHead(true);
  auto n = h.Feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
  REQUIRE(n.ok());
  CHECK(h.events().message_complete);
  CHECK(h.head().content_length == 100u);

  HttpParser cut(HttpParser::Kind::kResponse);
  REQUIRE(cut.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").ok());
  CHECK_FALSE(cut.FeedEof().ok());  // cut short
}

TEST_CASE("malformed and hostile requests are errors", "[proxy][http]") {
  const std::vector<std::string> bad = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",  // smuggling
      "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
      "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
      std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29),
  };
  for (const auto& req : bad) {
    INFO(req);
    HttpParser p(HttpParser::Kind::kRequest);
    CHECK_FALSE(FeedAll(p, req, 3).ok());
  }
  // A head over the limit, and too many headers.
  HttpParser big(HttpParser::Kind::kRequest, HttpLimits{1024, 100});
  CHECK_FALSE(big.Feed("GET /" + std::string(2000, 'a') + " HTTP/1.1\r\n\r\n").ok());
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 200; ++i) many += "h" + std::to_string(i) + ": v\r\n";
  HttpParser m(HttpParser::Kind::kRequest);
  CHECK_FALSE(m.Feed(many + "\r\n").ok());
}

TEST_CASE("random bytes never crash the parser", "[proxy][http]") {
  std::mt19937 rng(7);
  const std::string alphabet =
      "GET POST/ HTTP/1.1\r\n:0123456789abcdefContent-Length Transfer-Encoding chunked";
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    size_t len = rng() % 200;
    for (size_t j = 0; j < len; ++j) {
      s += (rng() % 4 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    HttpParser p(HttpParser::Kind::kRequest);
    (void)FeedAll(p, (i % 2 ? "GET / HTTP/1.1\r\n" : "") + s, 1 + rng() % 16);
  }
  SUCCEED();
}

TEST_CASE("serialization drops hop-by-hop headers and sets framing", "[proxy][http]") {
  HttpHead h;
  h.method = "POST";
  h.headers = {{"Host", "b"},       {"Connection", "keep-alive, X-Private"}, {"X-Private", "1"},
               {"Keep-Alive", "5"}, {"Transfer-Encoding", "chunked"},        {"Content-Length", "9"},
               {"X-Kept", "yes"}};
  StripHopByHop(h);
  CHECK(SerializeRequestHead(h, "/p", BodyFraming::kChunked, 0, true) ==
        "POST /p HTTP/1.1\r\nHost: b\r\nX-Kept: yes\r\ntransfer-encoding: chunked\r\n\r\n");
  HttpHead r;
  r.status = 503;
  CHECK(SerializeResponseHead(r, BodyFraming::kLength, 3, false) ==
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 3\r\nconnection: close\r\n\r\n");
  CHECK(ChunkHeader(26) == "1a\r\n");
}

TEST_CASE("every field of the head is fresh for the next message on a parser", "[proxy][http]") {
  HttpParser p(HttpParser::Kind::kRequest);
  REQUIRE(p.Feed("PUT /first HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
                 "Connection: keep-alive\r\n\r\n0\r\n\r\n")
              .ok());
  REQUIRE(p.events().message_complete);
  CHECK(p.head().chunked);
  CHECK(p.head().expect_continue);
  CHECK(p.head().version_minor == 0);
  p.Reset();
  REQUIRE(p.Feed("GET /ws HTTP/1.1\r\nHost: b\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").ok());
  CHECK(p.head().upgrade);
  p.Reset();
  REQUIRE(p.Feed("GET /second HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n").ok());
  REQUIRE(p.events().message_complete);
  const HttpHead& h = p.head();
  CHECK(h.method == "GET");
  CHECK(h.target == "/second");  // not appended to the last target
  CHECK(h.version_major == 1);
  CHECK(h.version_minor == 1);
  CHECK_FALSE(h.chunked);
  CHECK_FALSE(h.content_length);
  CHECK_FALSE(h.expect_continue);
  CHECK_FALSE(h.upgrade);
  CHECK_FALSE(h.keep_alive);
  CHECK(h.headers == HeaderList{{"Host", "c"}, {"Connection", "close"}});

  HttpParser r(HttpParser::Kind::kResponse);
  REQUIRE(r.Feed("HTTP/1.1 404 Gone Away\r\nContent-Length: 0\r\n\r\n").ok());
  r.Reset();
  REQUIRE(r.Feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").ok());
  CHECK(r.head().status == 200);
  CHECK(r.head().reason == "OK");
  CHECK_FALSE(r.head().content_length);
  CHECK(r.head().chunked);
}

TEST_CASE("hop-by-hop names match in any case and only whole names", "[proxy][http]") {
  HttpHead h;
  h.headers = {{"TE", "trailers"},
               {"Te-Extra", "1"},
               {"EXPECT", "100-continue"},
               {"Expected", "1"},
               {"Trailer", "x"},
               {"UPGRADE", "h2c"},
               {"Upgrade-Insecure-Requests", "1"},
               {"Keep-Alive", "5"},
               {"Keep-Alives", "1"},
               {"Content-Length", "3"},
               {"Content-Type", "text/plain"},
               {"Proxy-Connection", "x"},
               {"Transfer-Encoding", "gzip"},
               {"Proxy-Authenticate", "x"},
               {"proxy-authorization", "x"},
               {"Proxy-Authorizations", "1"}};
  StripHopByHop(h);
  CHECK(h.headers == HeaderList{{"Te-Extra", "1"},
                                {"Expected", "1"},
                                {"Upgrade-Insecure-Requests", "1"},
                                {"Keep-Alives", "1"},
                                {"Content-Type", "text/plain"},
                                {"Proxy-Authorizations", "1"}});
  CHECK(EqualsIgnoreCase("X-Request-ID", "x-request-id"));
  CHECK_FALSE(EqualsIgnoreCase("x-request-id", "x-request-ie"));
  CHECK_FALSE(EqualsIgnoreCase("host", "hos"));
  // Nothing to strip: the fields stay as they are, in order.
  HttpHead plain;
  plain.headers = {{"Host", "a"}, {"Accept", "*/*"}};
  StripHopByHop(plain);
  CHECK(plain.headers == HeaderList{{"Host", "a"}, {"Accept", "*/*"}});
}

TEST_CASE("serialized heads: start line, fields in order, framing", "[proxy][http]") {
  HttpHead h;
  h.method = "GET";
  h.headers = {{"Host", "b:8080"}, {"x-request-id", "0123456789abcdef0123456789abcdef0123"}};
  CHECK(SerializeRequestHead(h, "/a?b=c", BodyFraming::kNone, 0, true) ==
        "GET /a?b=c HTTP/1.1\r\nHost: b:8080\r\nx-request-id: 0123456789abcdef0123456789abcdef0123\r\n\r\n");
  CHECK(SerializeRequestHead(h, "/", BodyFraming::kLength, 18446744073709551615u, false) ==
        "GET / HTTP/1.1\r\nHost: b:8080\r\nx-request-id: 0123456789abcdef0123456789abcdef0123\r\n"
        "content-length: 18446744073709551615\r\nconnection: close\r\n\r\n");
  HttpHead r;
  r.status = 200;
  r.reason = "Fine";
  r.headers = {{"Server", "nginx"}};
  CHECK(SerializeResponseHead(r, BodyFraming::kChunked, 0, true) ==
        "HTTP/1.1 200 Fine\r\nServer: nginx\r\ntransfer-encoding: chunked\r\n\r\n");
  r.reason.clear();
  r.status = 999;
  CHECK(SerializeResponseHead(r, BodyFraming::kNone, 0, true) ==
        "HTTP/1.1 999 Unknown\r\nServer: nginx\r\n\r\n");
}

}  // namespace
}  // namespace weft::proxy
