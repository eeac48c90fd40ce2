// A downstream or upstream connection as the data path sees it: plain TCP or
// TLS over TCP, read and written from coroutines on one worker's
// io_context. TLS contexts (the workload certificate, the trust bundle) are
// built by TlsContexts and kept alive by the streams that use them.
#pragma once

#define ASIO_STANDALONE 1
// A standard header before Asio: Asio's config reads libstdc++'s
// _GLIBCXX_HAVE_ALIGNED_ALLOC, and a translation unit that included Asio
// first would allocate handler memory with operator new while the others
// free it with free() (ASan: alloc-dealloc-mismatch).
#include <cstddef>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/workload_certificate.h"

namespace weft::proxy {

using tcp = asio::ip::tcp;

// The workload certificate and trust roots as OpenSSL contexts, rebuilt when
// either changes. Immutable once built.
struct TlsContexts {
  std::shared_ptr<asio::ssl::context> server;  // inbound: requires a client certificate
  std::shared_ptr<asio::ssl::context> client;  // upstream mTLS
  std::string own_spiffe_id;
  uint64_t generation = 0;
  std::string roots_pem;

  static absl::StatusOr<std::shared_ptr<const TlsContexts>> Build(const WorkloadIdentity& identity,
                                                                  const std::string& roots_pem);
};
using TlsContextsConstSharedPtr = std::shared_ptr<const TlsContexts>;

class ReadinessLoop;

// A stream's read readiness (see ByteStream::Drained), which the worker's
// ReadinessLoop updates.
struct StreamReadiness {
  using Waiter = asio::async_result<asio::use_awaitable_t<>, void(int)>::handler_type;
  StreamReadiness() = default;
  StreamReadiness(const StreamReadiness&) = delete;  // the loop's epoll set points at it
  StreamReadiness& operator=(const StreamReadiness&) = delete;
  ~StreamReadiness();

  bool ready = true;                // a receive may return data or the end of stream
  bool peer_closed = false;         // the loop saw the peer's FIN (or an error): never drained again
  bool looked_up = false;           // `loop` was searched for
  ReadinessLoop* loop = nullptr;    // the epoll set watching the socket (none: Asio waits)
  std::optional<Waiter> waiter;     // a reader suspended in WaitReadable()
  StreamReadiness* prev = nullptr;  // in loop->waiting_ while `waiter` is set
  StreamReadiness* next = nullptr;
};

class ByteStream {
 public:
  virtual ~ByteStream();
  virtual asio::awaitable<size_t> ReadSome(asio::mutable_buffer buffer, std::error_code& ec) = 0;
  virtual asio::awaitable<void> Write(std::string_view data, std::error_code& ec) = 0;
  virtual asio::awaitable<void> Write2(std::string_view a, std::string_view b, std::error_code& ec) = 0;
  virtual tcp::socket& socket() = 0;
  virtual bool tls() const = 0;
  // Ends this side's writing and keeps reading (a half-close: TCP FIN; with
  // TLS, close_notify first).
  virtual asio::awaitable<void> ShutdownWrite(std::error_code& ec) = 0;
  // The peer certificate's URI SAN after a TLS handshake ("" otherwise).
  const std::string& peer_principal() const { return peer_principal_; }
  // Data received by the stream but not yet read from it (OpenSSL's buffer).
  virtual bool Buffered() const { return false; }
  // Closes the socket; a reader suspended in WaitReadable() gets ECANCELED.
  void Close();
  // For pooled idle connections: false when the peer closed it or sent
  // something unexpected meanwhile. Without a syscall when the
  // ReadinessLoop saw no event since a receive drained the socket (the
  // response's last bytes); a peeking receive otherwise.
  bool IdleAndOpen();

  // Held for the stream's lifetime (e.g. a circuit-breaker connection slot).
  void Attach(std::shared_ptr<void> token) { attachment_ = std::move(token); }
  // When the stream went into an idle pool (pool idle timeout).
  std::chrono::steady_clock::time_point idle_since{};

  // Read readiness, kept as nginx keeps its `ready` flag. A receive that
  // comes back short or with EAGAIN has drained the socket: Drained()
  // records that, and the socket is readable() again once the io_context's
  // ReadinessLoop sees its next event, which also wakes a reader suspended
  // in WaitReadable(). So a read does not try a receive that cannot return
  // data, and a pooled connection learns that its peer closed or wrote
  // without a syscall of its own. (A read through Asio 1.22 tries a receive
  // first whenever any event came since the last end of stream, as Asio
  // does not count a short read as draining: an EAGAIN receive before
  // almost every read, 2.65 a proxied request with the idle pool's peek;
  // nginx has none. Asio's readiness wait is no cheaper: it re-arms the
  // socket with an epoll_ctl.) Without a loop, WaitReadable() is Asio's
  // wait. Relies on one thread running the io_context. Public for
  // TlsStream's socket BIO.
  bool readable() const { return readiness_->ready; }
  void Drained();
  // Waits until the socket may be readable: 0, or the errno the wait failed
  // with (ECANCELED when the stream was closed meanwhile, in which case the
  // stream may be gone). The caller then calls Readable().
  asio::awaitable<int> WaitReadable();
  void Readable() { readiness_->ready = true; }

 protected:
  ByteStream();

  std::string peer_principal_;
  std::shared_ptr<void> attachment_;

 private:
  std::unique_ptr<StreamReadiness> readiness_;  // heap: its address is in the loop's epoll set
};
using ByteStreamPtr = std::unique_ptr<ByteStream>;

// One worker's readiness events for its streams, as nginx gets them: the
// streams' sockets are in an edge-triggered epoll set of its own, which the
// io_context's reactor watches as one descriptor. A batch of events costs
// one epoll_wait and one re-arm (Asio's epoll_ctl) for all its streams,
// where a read through Asio costs a receive that fails with EAGAIN or an
// epoll_ctl for each stream. Installed with asio::make_service on the
// worker's io_context before its first stream; streams on an io_context
// without one wait through Asio. Its own wait is always pending, so the
// io_context's run() returns only once it is stopped.
class ReadinessLoop : public asio::execution_context::service {
 public:
  using key_type = ReadinessLoop;
  static asio::execution_context::id id;

  explicit ReadinessLoop(asio::execution_context& context);
  ~ReadinessLoop() override;

  // For ByteStream: watches `fd` for `r` from now on (false: it cannot).
  bool Watch(int fd, StreamReadiness* r);
  void AddWaiting(StreamReadiness* r);
  void RemoveWaiting(StreamReadiness* r);

 private:
  void shutdown() override;
  void Arm();
  void Harvest();

  static constexpr int kMaxEvents = 128;
  int epoll_fd_ = -1;
  std::optional<asio::posix::stream_descriptor> wake_;  // epoll_fd_ in the reactor
  StreamReadiness* waiting_ = nullptr;                  // streams with a suspended reader
  std::vector<StreamReadiness::Waiter> woken_;          // Harvest()'s scratch
};

class TcpStream final : public ByteStream {
 public:
  explicit TcpStream(tcp::socket socket) : socket_(std::move(socket)) {}
  asio::awaitable<size_t> ReadSome(asio::mutable_buffer buffer, std::error_code& ec) override;
  asio::awaitable<void> Write(std::string_view data, std::error_code& ec) override;
  asio::awaitable<void> Write2(std::string_view a, std::string_view b, std::error_code& ec) override;
  tcp::socket& socket() override { return socket_; }
  bool tls() const override { return false; }
  asio::awaitable<void> ShutdownWrite(std::error_code& ec) override;

 private:
  tcp::socket socket_;
};

// TLS directly on the socket: OpenSSL reads and writes the socket itself
// (through a BIO that sends with MSG_NOSIGNAL and never blocks) and the
// coroutine waits for readiness when OpenSSL asks for it. Unlike
// asio::ssl::stream there are no per-stream engine buffers or BIO pair
// (four 17 KB buffers and a copy of every byte), and OpenSSL's own record
// buffers are released while the connection has nothing buffered
// (SSL_MODE_RELEASE_BUFFERS, SSL_free_buffers before a read waits), so an
// idle or waiting TLS connection holds a
// few KB instead of ~100 KB. Relies on the worker's io_context being run by
// one thread (a readiness event cannot be consumed between OpenSSL's EAGAIN
// and the wait that follows it).
class TlsStream final : public ByteStream {
 public:
  TlsStream(tcp::socket socket, TlsContextsConstSharedPtr contexts, bool server);
  TlsStream(const TlsStream&) = delete;  // OpenSSL's BIO points at it
  TlsStream& operator=(const TlsStream&) = delete;
  // Handshakes; as a client, sets SNI and checks the peer's URI SAN against
  // `expected_sans` (any mesh certificate when empty).
  asio::awaitable<void> Handshake(const std::string& sni, const std::vector<std::string>& expected_sans,
                                  std::error_code& ec, std::string& error);
  asio::awaitable<size_t> ReadSome(asio::mutable_buffer buffer, std::error_code& ec) override;
  asio::awaitable<void> Write(std::string_view data, std::error_code& ec) override;
  asio::awaitable<void> Write2(std::string_view a, std::string_view b, std::error_code& ec) override;
  tcp::socket& socket() override { return socket_; }
  bool tls() const override { return true; }
  bool Buffered() const override;
  asio::awaitable<void> ShutdownWrite(std::error_code& ec) override;

  // For the socket BIO (byte_stream.cc).
  bool saw_eof() const { return saw_eof_; }
  void set_saw_eof() { saw_eof_ = true; }

 private:
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  // What an OpenSSL call that returned `ret` waits for before it is
  // retried; nullopt with `ec` set when it failed.
  std::optional<tcp::socket::wait_type> Retry(int ret, std::error_code& ec);
  asio::awaitable<void> WriteAll(const char* data, size_t size, std::error_code& ec);
  // Waits for what Retry() asked for (a failed wait touches nothing of the
  // stream after it: the stream may be gone).
  asio::awaitable<void> Await(tcp::socket::wait_type wait, std::error_code& ec);

  static constexpr size_t kCoalesceLimit = 16 * 1024;  // one TLS record's plaintext
  TlsContextsConstSharedPtr contexts_;                 // outlives ssl_
  bool server_;
  bool saw_eof_ = false;  // the peer closed its write half (a receive returned 0)
  tcp::socket socket_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::string coalesced_;  // Write2's two pieces as one
};

}  // namespace weft::proxy
