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

class ByteStream {
 public:
  virtual ~ByteStream() = default;
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
  void Close() {
    std::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }
  // For pooled idle connections: false when the peer closed it or sent
  // something unexpected meanwhile.
  bool IdleAndOpen();
  // Called when the connection goes into the idle pool: a peeking receive
  // then answers IdleAndOpen() without a syscall when the
  // connection comes back out soon (kIdleWatchTrusted); after longer idling
  // the socket is peeked as well.
  void WatchIdle();

  // Held for the stream's lifetime (e.g. a circuit-breaker connection slot).
  void Attach(std::shared_ptr<void> token) { attachment_ = std::move(token); }
  // When the stream went into an idle pool (pool idle timeout).
  std::chrono::steady_clock::time_point idle_since{};

 protected:
  std::string peer_principal_;
  std::shared_ptr<void> attachment_;

 private:
  struct IdleWatch {
    bool readable = false;  // the peer sent data or closed while pooled
    char peeked = 0;        // the peeking receive's target
    std::chrono::steady_clock::time_point since;
  };
  static constexpr std::chrono::milliseconds kIdleWatchTrusted{1000};
  std::shared_ptr<IdleWatch> idle_watch_;
  bool watching_ = false;
};
using ByteStreamPtr = std::unique_ptr<ByteStream>;

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

  static constexpr size_t kCoalesceLimit = 16 * 1024;  // one TLS record's plaintext
  TlsContextsConstSharedPtr contexts_;                 // outlives ssl_
  bool server_;
  bool saw_eof_ = false;  // the peer closed its write half (a receive returned 0)
  tcp::socket socket_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::string coalesced_;  // Write2's two pieces as one
};

}  // namespace weft::proxy
