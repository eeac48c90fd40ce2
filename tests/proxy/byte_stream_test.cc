// TcpStream (proxy/byte_stream.h) over real loopback sockets: reads that
// wait for readiness (through the io_context's ReadinessLoop, as on a proxy
// worker, and through Asio where none is installed), pooled connections
// whose peer closed or wrote while they sat idle, and writes.
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

  explicit Connected(bool with_loop = false) {
    if (with_loop) asio::make_service<ReadinessLoop>(io);
    tcp::socket c(io);
    c.connect(acceptor.local_endpoint());
    server = acceptor.accept();
    client = std::make_unique<TcpStream>(std::move(c));
  }
  // Runs the io_context's ready handlers for a while (readiness events are
  // delivered through it), as the worker's loop would.
  void Settle() {
    // Work outstanding: poll() runs the reactor even when nothing waits.
    auto guard = asio::make_work_guard(io);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (std::chrono::steady_clock::now() < until) {
      io.poll();
      io.restart();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  void Send(std::string_view bytes) { asio::write(server, asio::buffer(bytes.data(), bytes.size())); }
};

// One ReadSome on the client, run to completion (or until `limit`).
struct Read {
  bool done = false;
  size_t n = 0;
  std::error_code ec;
  std::string data;
};
std::shared_ptr<Read> StartRead(Connected& c, size_t size = 4096) {
  auto r = std::make_shared<Read>();
  asio::co_spawn(
      c.io,
      [&c, r, size]() -> asio::awaitable<void> {
        std::string buf(size, '\0');
        r->n = co_await c.client->ReadSome(asio::buffer(buf), r->ec);
        r->data = buf.substr(0, r->n);
        r->done = true;
      },
      asio::detached);
  return r;
}
void RunUntil(Connected& c, const std::shared_ptr<Read>& r,
              std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!r->done && std::chrono::steady_clock::now() < until) {
    c.io.run_for(std::chrono::milliseconds(10));
    c.io.restart();
  }
}

// One ReadSome started and run to completion.
std::shared_ptr<Read> ReadOnce(Connected& c, size_t size = 4096) {
  auto r = StartRead(c, size);
  RunUntil(c, r);
  REQUIRE(r->done);
  return r;
}

// A response read whole: the socket is drained, as when a connection goes
// back to the pool.
void ReadResponse(Connected& c) {
  c.Send("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  // Its readiness event handled first: one that came before the read is
  // reported (and, stale by then, costs one receive) after it.
  c.Settle();
  auto r = ReadOnce(c);
  REQUIRE(r->n == 38);
  CHECK_FALSE(c.client->readable());  // short read: nothing more to receive
}

TEST_CASE("a read waits for data and gets it when it comes", "[proxy][stream]") {
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  Connected c(with_loop);
  auto r = StartRead(c);
  c.Settle();
  CHECK_FALSE(r->done);  // nothing sent yet: suspended, not spinning or failing
  c.Send("hello");
  RunUntil(c, r);
  REQUIRE(r->done);
  CHECK_FALSE(r->ec);
  CHECK(r->data == "hello");
  // The peer's close: the end of stream.
  c.server.close();
  auto eof = ReadOnce(c);
  CHECK(eof->ec == asio::error::eof);
}

TEST_CASE("data that came while nobody read is not missed", "[proxy][stream]") {
  // A pipelined request: it arrives after a short read drained the socket
  // and before the next read starts; its readiness event is handled with no
  // reader waiting. The next read must still get it.
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  Connected c(with_loop);
  ReadResponse(c);
  c.Send("second");
  c.Settle();
  // The loop saw the event (without one, Asio's wait re-arms the socket and
  // is told of the data then).
  if (with_loop) CHECK(c.client->readable());
  auto r = ReadOnce(c);
  CHECK(r->data == "second");
  // A read that fills the buffer leaves the rest readable.
  c.Send("0123456789");
  c.Settle();
  auto part = ReadOnce(c, 4);
  CHECK(part->data == "0123");
  auto rest = ReadOnce(c);
  CHECK(rest->data == "456789");
}

TEST_CASE("the end of stream that came with the last bytes is read", "[proxy][stream]") {
  // The peer writes and closes at once (an app ending a WebSocket): one
  // readiness event covers both, the read that gets the bytes is short,
  // and no further event will come for the FIN.
  const bool with_loop = GENERATE(false, true);
  const bool reader_waiting = GENERATE(false, true);
  CAPTURE(with_loop, reader_waiting);
  Connected c(with_loop);
  ReadResponse(c);  // drained: the socket is in the loop's epoll set
  std::shared_ptr<Read> r;
  if (reader_waiting) {
    r = StartRead(c);
    c.Settle();
    REQUIRE_FALSE(r->done);
  }
  c.Send("bye");
  c.server.shutdown(tcp::socket::shutdown_send);
  c.Settle();
  if (!reader_waiting) r = StartRead(c);
  RunUntil(c, r);
  REQUIRE(r->done);
  CHECK(r->data == "bye");
  auto eof = ReadOnce(c);
  CHECK(eof->ec == asio::error::eof);
}

TEST_CASE("closing a stream wakes its waiting reader with operation_aborted", "[proxy][stream]") {
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  Connected c(with_loop);
  ReadResponse(c);  // drained: the next read waits
  auto r = StartRead(c);
  c.Settle();
  REQUIRE_FALSE(r->done);
  // What a deadline does when it fires.
  c.client->Close();
  RunUntil(c, r);
  REQUIRE(r->done);
  CHECK(r->ec == asio::error::operation_aborted);
  // Reading a closed stream fails at once.
  auto again = ReadOnce(c);
  CHECK(again->ec);
}

TEST_CASE("a reader still waiting when the io_context goes is destroyed with it", "[proxy][stream]") {
  // The coroutine owns its stream and waits on it; nothing else holds
  // either. Destroying the io_context must destroy both (LeakSanitizer
  // checks this in the asan build) without touching freed memory.
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  auto c = std::make_unique<Connected>(with_loop);
  ReadResponse(*c);
  auto started = std::make_shared<bool>(false);
  asio::co_spawn(
      c->io,
      [stream = std::move(c->client), started]() -> asio::awaitable<void> {
        *started = true;
        char buf[16];
        std::error_code ec;
        co_await stream->ReadSome(asio::buffer(buf), ec);
      },
      asio::detached);
  c->Settle();
  CHECK(*started);
  c.reset();
}

TEST_CASE("a pooled connection stays usable while the peer is quiet", "[proxy][stream]") {
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  Connected c(with_loop);
  ReadResponse(c);
  c.Settle();
  CHECK(c.client->IdleAndOpen());
  // Taken out of the pool, used and pooled again: the same holds.
  ReadResponse(c);
  c.Settle();
  CHECK(c.client->IdleAndOpen());
}

TEST_CASE("a pooled connection the peer closed is not reused", "[proxy][stream]") {
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  Connected c(with_loop);
  ReadResponse(c);
  c.server.close();
  c.Settle();
  CHECK_FALSE(c.client->IdleAndOpen());
}

TEST_CASE("a pooled connection the peer wrote to is not reused", "[proxy][stream]") {
  const bool with_loop = GENERATE(false, true);
  CAPTURE(with_loop);
  Connected c(with_loop);
  ReadResponse(c);
  c.Send("HTTP/1.1 408 Request Timeout\r\n\r\n");
  c.Settle();
  CHECK_FALSE(c.client->IdleAndOpen());
}

TEST_CASE("a connection never read from is peeked", "[proxy][stream]") {
  Connected c;
  CHECK(c.client->readable());
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
