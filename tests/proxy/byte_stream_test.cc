// Pooled upstream connections (proxy/byte_stream.h): IdleAndOpen() must
// report a connection the peer closed, or wrote stray bytes to, while it sat
// in the pool, both through the readability wait WatchIdle() arms and
// through the socket peek used without it. Real loopback sockets.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
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

}  // namespace
}  // namespace weft::proxy
