#include "proxy/byte_stream.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::proxy {
namespace {

using asio::redirect_error;
using asio::use_awaitable;

absl::Status Configure(asio::ssl::context& ctx, const WorkloadIdentity& id, const std::vector<ca::X509Ptr>& roots,
                       bool server) {
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate(native, id.chain[0].get()) != 1) {
    return absl::InternalError("TLS: certificate: " + ca::DrainOpenSslErrors());
  }
  for (size_t i = 1; i < id.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(native, id.chain[i].get()) != 1) {
      return absl::InternalError("TLS: chain: " + ca::DrainOpenSslErrors());
    }
  }
  if (SSL_CTX_use_PrivateKey(native, id.key.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
    return absl::InternalError("TLS: key: " + ca::DrainOpenSslErrors());
  }
  X509_STORE* store = SSL_CTX_get_cert_store(native);
  for (const auto& root : roots) X509_STORE_add_cert(store, root.get());
  SSL_CTX_set_verify(native, server ? (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) : SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(native, server ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
  if (server) {
    // No TLS 1.3 session tickets: they would arrive on idle pooled
    // connections and make them look unusable.
    SSL_CTX_set_num_tickets(native, 0);
    static const unsigned char kSid[] = "weft-proxy";
    SSL_CTX_set_session_id_context(native, kSid, sizeof(kSid) - 1);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TlsContextsConstSharedPtr> TlsContexts::Build(const WorkloadIdentity& identity,
                                                             const std::string& roots_pem) {
  auto roots = ca::ParseCertificatesPem(roots_pem);
  if (!roots.ok()) return absl::InvalidArgumentError("trust bundle: " + std::string(roots.status().message()));
  auto out = std::make_shared<TlsContexts>();
  out->server = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  out->client = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  if (auto s = Configure(*out->server, identity, *roots, true); !s.ok()) return s;
  if (auto s = Configure(*out->client, identity, *roots, false); !s.ok()) return s;
  out->own_spiffe_id = identity.spiffe_id;
  out->generation = identity.generation;
  out->roots_pem = roots_pem;
  return TlsContextsConstSharedPtr(std::move(out));
}

void ByteStream::WatchIdle() {
  // One watch per stream, reused once the last wait's handler has let go of it.
  if (!idle_watch_ || idle_watch_.use_count() > 1) idle_watch_ = std::make_shared<IdleWatch>();
  IdleWatch& watch = *idle_watch_;
  watch.readable = false;
  watch.since = std::chrono::steady_clock::now();
  watching_ = true;
  // A peeking receive rather than a readiness wait: Asio starts a wait with
  // an epoll_ctl call, a receive after a short read (the response's end)
  // only queues, as the socket is registered for input already.
  socket().async_receive(asio::buffer(&watch.peeked, 1), tcp::socket::message_peek,
                         [watch = idle_watch_](std::error_code ec, size_t) {
                           if (ec != asio::error::operation_aborted) watch->readable = true;
                         });
}

bool ByteStream::IdleAndOpen() {
  if (watching_) {
    watching_ = false;
    std::error_code ignored;
    socket().cancel(ignored);  // no syscall: the receive leaves the reactor's queue
    if (idle_watch_->readable) return false;
    // A wait armed a moment ago has seen every event since; an edge that
    // came before it (while the response's last bytes were being written
    // downstream) is caught by the peek below after long idling, else by
    // the caller's retry of a request whose reused connection failed.
    if (std::chrono::steady_clock::now() - idle_watch_->since < kIdleWatchTrusted) return true;
  }
  char c;
  ssize_t n = ::recv(socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

asio::awaitable<size_t> TcpStream::ReadSome(asio::mutable_buffer buffer, std::error_code& ec) {
  co_return co_await socket_.async_read_some(buffer, redirect_error(use_awaitable, ec));
}

asio::awaitable<void> TcpStream::Write(std::string_view data, std::error_code& ec) {
  co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), redirect_error(use_awaitable, ec));
}

asio::awaitable<void> TcpStream::Write2(std::string_view a, std::string_view b, std::error_code& ec) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  co_await asio::async_write(socket_, bufs, redirect_error(use_awaitable, ec));
}

TlsStream::TlsStream(tcp::socket socket, TlsContextsConstSharedPtr contexts, bool server)
    : contexts_(std::move(contexts)),
      server_(server),
      stream_(std::move(socket), server ? *contexts_->server : *contexts_->client) {}

asio::awaitable<void> TlsStream::Handshake(const std::string& sni, const std::vector<std::string>& expected_sans,
                                           std::error_code& ec, std::string& error) {
  if (!server_ && !sni.empty()) SSL_set_tlsext_host_name(stream_.native_handle(), sni.c_str());
  co_await stream_.async_handshake(server_ ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
                                   redirect_error(use_awaitable, ec));
  if (ec) {
    long verify = SSL_get_verify_result(stream_.native_handle());
    error = verify != X509_V_OK ? absl::StrCat("certificate verification failed: ",
                                               X509_verify_cert_error_string(verify))
                                : ec.message();
    co_return;
  }
  X509* peer = SSL_get1_peer_certificate(stream_.native_handle());
  if (peer == nullptr) {
    if (!server_) {
      error = "the peer presented no certificate";
      ec = asio::error::access_denied;
    }
    co_return;
  }
  ca::X509Ptr owned(peer);
  std::vector<std::string> sans = ca::UriSans(peer);
  peer_principal_ = sans.empty() ? "" : sans[0];
  if (!server_ && !expected_sans.empty() &&
      std::find(expected_sans.begin(), expected_sans.end(), peer_principal_) == expected_sans.end()) {
    error = absl::StrCat("the peer's identity ", peer_principal_.empty() ? "(none)" : peer_principal_,
                         " is not one of ", absl::StrJoin(expected_sans, ", "));
    ec = asio::error::access_denied;
  }
}

asio::awaitable<size_t> TlsStream::ReadSome(asio::mutable_buffer buffer, std::error_code& ec) {
  co_return co_await stream_.async_read_some(buffer, redirect_error(use_awaitable, ec));
}

asio::awaitable<void> TlsStream::Write(std::string_view data, std::error_code& ec) {
  co_await asio::async_write(stream_, asio::buffer(data.data(), data.size()), redirect_error(use_awaitable, ec));
}

asio::awaitable<void> TlsStream::Write2(std::string_view a, std::string_view b, std::error_code& ec) {
  // Asio's TLS stream encrypts one buffer per record and sends each record
  // on its own: a head and a small body go out as one record, one send.
  if (a.size() + b.size() <= kCoalesceLimit) {
    coalesced_.assign(a.data(), a.size());
    coalesced_.append(b.data(), b.size());
    co_await asio::async_write(stream_, asio::buffer(coalesced_), redirect_error(use_awaitable, ec));
    co_return;
  }
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  co_await asio::async_write(stream_, bufs, redirect_error(use_awaitable, ec));
}

}  // namespace weft::proxy
