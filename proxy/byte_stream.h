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

 private:
  tcp::socket socket_;
};

class TlsStream final : public ByteStream {
 public:
  TlsStream(tcp::socket socket, TlsContextsConstSharedPtr contexts, bool server);
  // Handshakes; as a client, sets SNI and checks the peer's URI SAN against
  // `expected_sans` (any mesh certificate when empty).
  asio::awaitable<void> Handshake(const std::string& sni, const std::vector<std::string>& expected_sans,
                                  std::error_code& ec, std::string& error);
  asio::awaitable<size_t> ReadSome(asio::mutable_buffer buffer, std::error_code& ec) override;
  asio::awaitable<void> Write(std::string_view data, std::error_code& ec) override;
  asio::awaitable<void> Write2(std::string_view a, std::string_view b, std::error_code& ec) override;
  tcp::socket& socket() override { return stream_.next_layer(); }
  bool tls() const override { return true; }

 private:
  static constexpr size_t kCoalesceLimit = 16 * 1024;  // one TLS record's plaintext
  TlsContextsConstSharedPtr contexts_;  // outlives stream_
  bool server_;
  asio::ssl::stream<tcp::socket> stream_;
  std::string coalesced_;  // Write2's two pieces as one
};

}  // namespace weft::proxy
