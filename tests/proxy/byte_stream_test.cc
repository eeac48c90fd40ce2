// Pooled upstream connections (proxy/byte_stream.h): IdleAndOpen() must
// report a connection the peer closed, or wrote stray bytes to, while it sat
// in the pool, both through the readability wait WatchIdle() arms and
// through the socket peek used without it. Real loopback sockets.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "proxy/byte_stream.h"

namespace weft::proxy {
namespace {

struct Connected {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::unique_ptr<TcpStream> client;
  tcp::socket server{io};

  Connected() {
    tcp::socket c(io);
    c.connect(acceptor.local_endpoint());
    server = acceptor.accept();
    client = std::make_unique<TcpStream>(std::move(c));
  }
  // Runs the io_context's ready handlers for a while (the wait's completion
  // is delivered through it), as the worker's loop would.
  void Settle() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (std::chrono::steady_clock::now() < until) {
      io.poll();
      io.restart();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
};

TEST_CASE("a watched pooled connection stays usable while the peer is quiet", "[proxy][stream]") {
  Connected c;
  c.client->WatchIdle();
  c.Settle();
  CHECK(c.client->IdleAndOpen());
  // Taken out of the pool, used and pooled again: the same holds.
  c.client->WatchIdle();
  c.Settle();
  CHECK(c.client->IdleAndOpen());
}

TEST_CASE("a watched pooled connection the peer closed is not reused", "[proxy][stream]") {
  Connected c;
  c.client->WatchIdle();
  c.server.close();
  c.Settle();
  CHECK_FALSE(c.client->IdleAndOpen());
}

TEST_CASE("a watched pooled connection the peer wrote to is not reused", "[proxy][stream]") {
  Connected c;
  c.client->WatchIdle();
  asio::write(c.server, asio::buffer("HTTP/1.1 408 Request Timeout\r\n\r\n", 32));
  c.Settle();
  CHECK_FALSE(c.client->IdleAndOpen());
}

TEST_CASE("without a watch the socket is peeked", "[proxy][stream]") {
  Connected c;
  CHECK(c.client->IdleAndOpen());
  c.server.close();
  c.Settle();
  CHECK_FALSE(c.client->IdleAndOpen());
}

// TcpStream writes: sent at once when the socket takes them, the rest
// through the reactor when it does not; errors reported either way.
std::error_code RunWrite2(Connected& c, std::string_view a, std::string_view b, std::error_code ec) {
  bool done = false;
  asio::co_spawn(
      c.io,
      [&]() -> asio::awaitable<void> {
        co_await c.client->Write2(a, b, ec);
        done = true;
      },
      asio::detached);
  while (!done) {
    c.io.run_one();
  }
  c.io.restart();
  return ec;
}

TEST_CASE("a write larger than the socket buffers arrives whole and in order", "[proxy][stream]") {
  Connected c;
  std::string a(16 << 20, '\0'), b(16 << 20, '\0');
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>('a' + i % 23);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>('A' + i % 19);
  std::string got;
  std::thread reader([&] {
    std::error_code ec;
    char buf[65536];
    while (got.size() < a.size() + b.size()) {
      // Slower than the writer: the writer's socket buffer fills up.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      size_t n = c.server.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
  });
  // A stale error from an earlier operation is cleared by a write that works.
  std::error_code ec = RunWrite2(c, a, b, asio::error::operation_aborted);
  std::error_code ignored;
  c.client->socket().shutdown(tcp::socket::shutdown_send, ignored);  // the reader stops at the end
  reader.join();
  CHECK_FALSE(ec);
  REQUIRE(got.size() == a.size() + b.size());
  CHECK(got == a + b);
}

TEST_CASE("a write to a connection the peer closed reports an error", "[proxy][stream]") {
  Connected c;
  CHECK_FALSE(RunWrite2(c, "GET / HTTP/1.1\r\n", "\r\n", {}));
  c.server.close();
  std::error_code ec;
  // The first write after the peer's close may still be accepted (the
  // peer's reset comes back in answer to it).
  for (int i = 0; i < 50 && !ec; ++i) {
    ec = RunWrite2(c, "x", "", {});
    if (!ec) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(ec);
  // A closed stream: an error, not a crash or a hang.
  c.client->Close();
  CHECK(RunWrite2(c, "x", "y", {}));
  // Nothing to write: done, no error, as with asio::async_write.
  CHECK_FALSE(RunWrite2(c, "", "", asio::error::operation_aborted));
}

}  // namespace
}  // namespace weft::proxy
