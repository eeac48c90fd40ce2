#include "proxy/byte_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::proxy {
namespace {

using asio::redirect_error;
using asio::use_awaitable;

// recv(2), send(2) and sendmsg(2) without glibc's wrappers: those are
// cancellation points, which in a threaded program bracket every call with
// pthread bookkeeping (0.9 % of the sidecar's samples); the proxy never
// cancels threads.
ssize_t RecvRaw(int fd, void* data, size_t size, int flags) {
  return ::syscall(SYS_recvfrom, fd, data, size, flags, nullptr, nullptr);
}
ssize_t SendRaw(int fd, const void* data, size_t size, int flags) {
  return ::syscall(SYS_sendto, fd, data, size, flags, nullptr, 0);
}
ssize_t SendMsgRaw(int fd, const msghdr* msg, int flags) { return ::syscall(SYS_sendmsg, fd, msg, flags); }

absl::Status Configure(asio::ssl::context& ctx, const WorkloadIdentity& id,
                       const std::vector<ca::X509Ptr>& roots, bool server) {
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
  SSL_CTX_set_verify(native, server ? (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT) : SSL_VERIFY_PEER,
                     nullptr);
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
  if (!roots.ok())
    return absl::InvalidArgumentError("trust bundle: " + std::string(roots.status().message()));
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

StreamReadiness::~StreamReadiness() {
  // A reader still suspended on a stream being destroyed (only when the
  // io_context shuts down) is destroyed with it.
  if (waiter && loop != nullptr) loop->RemoveWaiting(this);
}

ByteStream::ByteStream() : readiness_(std::make_unique<StreamReadiness>()) {}

ByteStream::~ByteStream() = default;

void ByteStream::Close() {
  std::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);  // a reader waiting through Asio fails now
  StreamReadiness& r = *readiness_;
  r.ready = true;  // a read from now on fails at once (EBADF)
  if (r.loop != nullptr && r.waiter) {
    // The closed socket left the loop's epoll set: its reader is woken here,
    // from the queue (Close() may be called from the middle of anything).
    r.loop->RemoveWaiting(&r);
    StreamReadiness::Waiter waiter = std::move(*r.waiter);
    r.waiter.reset();
    auto executor = waiter.get_executor();  // before the lambda takes `waiter`
    asio::post(executor, [w = std::move(waiter)]() mutable { std::move(w)(ECANCELED); });
  }
}

void ByteStream::Drained() {
  StreamReadiness& r = *readiness_;
  // A short read that left the peer's FIN behind: the FIN's event has been
  // seen already and none follows, so the next read must try (and get the
  // end of stream). nginx's pending_eof.
  if (r.peer_closed) return;
  r.ready = false;
  if (r.looked_up) return;
  r.looked_up = true;
  asio::execution_context& context = asio::query(socket().get_executor(), asio::execution::context);
  if (asio::has_service<ReadinessLoop>(context)) {
    auto& loop = asio::use_service<ReadinessLoop>(context);
    // From now on the socket's next event makes it ready.
    if (loop.Watch(socket().native_handle(), &r)) r.loop = &loop;
  }
}

asio::awaitable<int> ByteStream::WaitReadable() {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(int)>(
      [this](StreamReadiness::Waiter waiter) {
        StreamReadiness* r = readiness_.get();
        if (r->loop == nullptr) {
          // Through Asio: its wait re-arms the socket in the reactor's epoll
          // set (an epoll_ctl), which reports data that came meanwhile.
          socket().async_wait(tcp::socket::wait_read, [w = std::move(waiter)](std::error_code ec) mutable {
            std::move(w)(ec.value());
          });
          return;
        }
        if (r->ready) {
          // Nothing to wait for: resumed from the queue, as a handler must
          // not run inside its own initiation.
          auto executor = waiter.get_executor();  // before the lambda takes `waiter`
          asio::post(executor, [w = std::move(waiter)]() mutable { std::move(w)(0); });
          return;
        }
        r->waiter.emplace(std::move(waiter));
        r->loop->AddWaiting(r);
      },
      asio::use_awaitable);
}

bool ByteStream::IdleAndOpen() {
  // Nothing arrived since a receive drained the socket (the response's last
  // bytes): open, as far as anything can tell without writing to it. An
  // event that is in the kernel but not yet handled is the caller's retry
  // of a request whose reused connection failed. Without a loop nothing
  // watched the socket meanwhile: it is peeked.
  if (readiness_->loop != nullptr && !readable() && !Buffered()) return true;
  char c;
  ssize_t n = RecvRaw(socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !Buffered()) {
    Drained();
    return true;
  }
  return false;
}

asio::awaitable<size_t> TcpStream::ReadSome(asio::mutable_buffer buffer, std::error_code& ec) {
  ec.clear();
  if (buffer.size() == 0) co_return 0;
  for (;;) {
    if (readable()) {
      ssize_t n = RecvRaw(socket_.native_handle(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n > 0) {
        if (static_cast<size_t>(n) < buffer.size()) Drained();
        co_return static_cast<size_t>(n);
      }
      if (n == 0) {
        ec = asio::error::eof;
        co_return 0;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = std::error_code(errno, asio::error::get_system_category());
        co_return 0;
      }
      Drained();
    }
    // When the stream is closed meanwhile the wait fails, and `this` is not
    // touched again (the stream may be gone).
    if (int err = co_await WaitReadable(); err != 0) {
      ec = std::error_code(err, asio::error::get_system_category());
      co_return 0;
    }
    Readable();
  }
}

asio::execution_context::id ReadinessLoop::id;

ReadinessLoop::ReadinessLoop(asio::execution_context& context)
    : asio::execution_context::service(context), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) return;  // Watch() then declines: streams wait through Asio
  std::error_code ec;
  wake_.emplace(static_cast<asio::io_context&>(context));  // installed on io_contexts only
  wake_->assign(epoll_fd_, ec);
  if (ec) {
    wake_.reset();
    ::close(epoll_fd_);
    epoll_fd_ = -1;
    return;
  }
  woken_.reserve(kMaxEvents);
  Arm();
}

ReadinessLoop::~ReadinessLoop() { shutdown(); }

void ReadinessLoop::shutdown() {
  // Readers still suspended (the io_context is shutting down): destroyed,
  // and with them the coroutines and streams they hold.
  while (waiting_ != nullptr) {
    StreamReadiness* r = waiting_;
    RemoveWaiting(r);
    std::optional<StreamReadiness::Waiter> dropped = std::move(r->waiter);
    r->waiter.reset();
  }
  if (wake_) {
    std::error_code ignored;
    wake_->close(ignored);  // closes epoll_fd_
    wake_.reset();
    epoll_fd_ = -1;
  }
}

bool ReadinessLoop::Watch(int fd, StreamReadiness* r) {
  if (epoll_fd_ < 0 || fd < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = r;
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void ReadinessLoop::AddWaiting(StreamReadiness* r) {
  r->prev = nullptr;
  r->next = waiting_;
  if (waiting_ != nullptr) waiting_->prev = r;
  waiting_ = r;
}

void ReadinessLoop::RemoveWaiting(StreamReadiness* r) {
  if (r->prev != nullptr) {
    r->prev->next = r->next;
  } else if (waiting_ == r) {
    waiting_ = r->next;
  }
  if (r->next != nullptr) r->next->prev = r->prev;
  r->prev = r->next = nullptr;
}

void ReadinessLoop::Arm() {
  wake_->async_wait(asio::posix::stream_descriptor::wait_read, [this](std::error_code ec) {
    if (!ec) Harvest();
  });
}

void ReadinessLoop::Harvest() {
  // A closed socket has left the epoll set, so every event names a live
  // stream; none is destroyed before the readers run below.
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, 0);
    for (int i = 0; i < n; ++i) {
      auto* r = static_cast<StreamReadiness*>(events[i].data.ptr);
      r->ready = true;
      if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r->peer_closed = true;
      if (r->waiter) {
        RemoveWaiting(r);
        woken_.push_back(std::move(*r->waiter));
        r->waiter.reset();
      }
    }
    if (n < kMaxEvents) break;
  }
  Arm();
  // The readers run last: one may close or destroy any stream.
  for (auto& waiter : woken_) std::move(waiter)(0);
  woken_.clear();
}

namespace {
// One non-blocking send of `a` then `b` (what Asio's speculative write does
// too, but without a reactor operation, a posted completion and a
// resumption through the scheduler: a forwarded request writes twice).
// How much was sent; 0 when the socket's buffer is full; an error in `ec`.
size_t SendNow(tcp::socket& socket, std::string_view a, std::string_view b, std::error_code& ec) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = b.empty() ? 1 : 2;
  for (;;) {
    ssize_t n = SendMsgRaw(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      ec = std::error_code(errno, asio::error::get_system_category());
    return 0;
  }
}
}  // namespace

asio::awaitable<void> TcpStream::Write(std::string_view data, std::error_code& ec) {
  co_await Write2(data, std::string_view(), ec);
}

asio::awaitable<void> TcpStream::Write2(std::string_view a, std::string_view b, std::error_code& ec) {
  ec.clear();                             // as async_write: cleared on success
  if (a.empty() && b.empty()) co_return;  // nothing to send, no error
  size_t sent = SendNow(socket_, a, b, ec);
  if (ec) co_return;
  // The rest (the peer is slow to read) waits for the socket.
  const size_t from_a = std::min(sent, a.size());
  a.remove_prefix(from_a);
  b.remove_prefix(sent - from_a);
  if (a.empty() && b.empty()) co_return;
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  co_await asio::async_write(socket_, bufs, redirect_error(use_awaitable, ec));
}

namespace {

// OpenSSL's socket I/O for TlsStream: non-blocking receive and send on the
// stream's socket (its current descriptor: -1, hence EBADF, once closed), no
// SIGPIPE, and the end of input remembered for BIO_eof (OpenSSL then tells
// a truncated stream from one closed with close_notify).
int BioRead(BIO* bio, char* data, size_t size, size_t* read) {
  auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (!stream->readable()) {  // drained, and no event since: no receive
    BIO_set_retry_read(bio);
    return 0;
  }
  ssize_t n = RecvRaw(stream->socket().native_handle(), data, size, MSG_DONTWAIT);
  if (n > 0) {
    // Read-ahead asks for a whole buffer: short means drained.
    if (static_cast<size_t>(n) < size) stream->Drained();
    *read = static_cast<size_t>(n);
    return 1;
  }
  if (n == 0) {
    stream->set_saw_eof();
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    stream->Drained();
    BIO_set_retry_read(bio);
  } else if (errno == EINTR) {
    BIO_set_retry_read(bio);
  }
  return 0;
}

int BioWrite(BIO* bio, const char* data, size_t size, size_t* written) {
  auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t n = SendRaw(stream->socket().native_handle(), data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
  return 0;
}

long BioCtrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return static_cast<TlsStream*>(BIO_get_data(bio))->saw_eof() ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft-proxy socket");
    BIO_meth_set_read_ex(m, BioRead);
    BIO_meth_set_write_ex(m, BioWrite);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

}  // namespace

asio::awaitable<void> TcpStream::ShutdownWrite(std::error_code& ec) {
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  co_return;
}

TlsStream::TlsStream(tcp::socket socket, TlsContextsConstSharedPtr contexts, bool server)
    : contexts_(std::move(contexts)),
      server_(server),
      socket_(std::move(socket)),
      ssl_(SSL_new(server ? contexts_->server->native_handle() : contexts_->client->native_handle())) {
  // Out of memory here leaves ssl_ null; every operation then fails.
  if (!ssl_) return;
  BIO* bio = BIO_new(SocketBioMethod());
  if (bio == nullptr) {
    ssl_.reset();
    return;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);
  // Read-ahead: one receive per record rather than one for its header and
  // one for its body. The write buffer is released after each write, the
  // read buffer when a read consumed it (and in ReadSome before a wait).
  SSL_set_read_ahead(ssl_.get(), 1);
  SSL_set_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS);
  if (server_) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
}

std::optional<tcp::socket::wait_type> TlsStream::Retry(int ret, std::error_code& ec) {
  const int err = SSL_get_error(ssl_.get(), ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return tcp::socket::wait_read;
    case SSL_ERROR_WANT_WRITE:
      return tcp::socket::wait_write;
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;
      break;  // close_notify
    case SSL_ERROR_SYSCALL:
      if (unsigned long e = ERR_get_error(); e != 0) {
        ec = std::error_code(static_cast<int>(e), asio::error::get_ssl_category());
      } else if (errno != 0) {
        ec = std::error_code(errno, asio::error::get_system_category());
      } else {
        ec = asio::error::eof;
      }
      break;
    default: {
      unsigned long e = ERR_get_error();
      // As asio::ssl::stream reports it: the peer closed without close_notify.
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ec = asio::ssl::error::stream_truncated;
      } else if (e == 0) {
        // A result this stream does not handle (e.g. a callback's retry):
        // still a failure, never an empty error_code.
        ec = asio::ssl::error::unexpected_result;
      } else {
        ec = std::error_code(static_cast<int>(e), asio::error::get_ssl_category());
      }
    }
  }
  ERR_clear_error();
  return std::nullopt;
}

asio::awaitable<void> TlsStream::Handshake(const std::string& sni,
                                           const std::vector<std::string>& expected_sans, std::error_code& ec,
                                           std::string& error) {
  if (!ssl_) {
    ec = asio::error::no_memory;
    error = ec.message();
    co_return;
  }
  if (!server_ && !sni.empty()) SSL_set_tlsext_host_name(ssl_.get(), sni.c_str());
  while (true) {
    if (!socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      break;
    }
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_.get());
    if (ret == 1) break;
    auto wait = Retry(ret, ec);
    if (!wait) break;
    co_await Await(*wait, ec);
    if (ec) break;
  }
  if (ec) {
    long verify = SSL_get_verify_result(ssl_.get());
    error = verify != X509_V_OK
                ? absl::StrCat("certificate verification failed: ", X509_verify_cert_error_string(verify))
                : ec.message();
    co_return;
  }
  X509* peer = SSL_get1_peer_certificate(ssl_.get());
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
  ec.clear();
  while (true) {
    if (!ssl_ || !socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      co_return 0;
    }
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_read_ex(ssl_.get(), buffer.data(), buffer.size(), &n);
    if (ret == 1) co_return n;
    auto wait = Retry(ret, ec);
    if (!wait) co_return 0;
    // OpenSSL set up its ~18 KB read buffer for this attempt and keeps it
    // while the connection waits (for a response, the next request):
    // released here unless it holds part of a record.
    SSL_free_buffers(ssl_.get());
    // As in TcpStream::ReadSome: on failure `this` may be gone.
    co_await Await(*wait, ec);
    if (ec) co_return 0;
  }
}

asio::awaitable<void> TlsStream::Await(tcp::socket::wait_type wait, std::error_code& ec) {
  if (wait == tcp::socket::wait_write) {
    co_await socket_.async_wait(wait, redirect_error(use_awaitable, ec));
  } else if (!readable()) {
    if (int err = co_await WaitReadable(); err != 0) {
      ec = std::error_code(err, asio::error::get_system_category());
      co_return;
    }
    Readable();
  }
}

bool TlsStream::Buffered() const { return ssl_ && SSL_has_pending(ssl_.get()) == 1; }

asio::awaitable<void> TlsStream::WriteAll(const char* data, size_t size, std::error_code& ec) {
  ec.clear();
  // Without SSL_MODE_ENABLE_PARTIAL_WRITE a write completes whole or is
  // retried with the same arguments.
  while (size > 0) {
    if (!ssl_ || !socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      co_return;
    }
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_write_ex(ssl_.get(), data, size, &n);
    if (ret == 1) {
      data += n;
      size -= n;
      continue;
    }
    auto wait = Retry(ret, ec);
    if (!wait) co_return;
    co_await Await(*wait, ec);
    if (ec) co_return;
  }
}

asio::awaitable<void> TlsStream::ShutdownWrite(std::error_code& ec) {
  ec.clear();
  // SSL_shutdown returns 0 once our close_notify is out (the peer's has not
  // come: reading goes on), 1 when the peer's came first.
  while (true) {
    if (!ssl_ || !socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      co_return;
    }
    ERR_clear_error();
    int ret = SSL_shutdown(ssl_.get());
    if (ret >= 0) break;
    auto wait = Retry(ret, ec);
    if (!wait) co_return;
    co_await Await(*wait, ec);
    if (ec) co_return;
  }
  socket_.shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> TlsStream::Write(std::string_view data, std::error_code& ec) {
  co_await WriteAll(data.data(), data.size(), ec);
}

asio::awaitable<void> TlsStream::Write2(std::string_view a, std::string_view b, std::error_code& ec) {
  // One record, one send, for a head and a small body.
  if (a.size() + b.size() <= kCoalesceLimit) {
    coalesced_.assign(a.data(), a.size());
    coalesced_.append(b.data(), b.size());
    co_await WriteAll(coalesced_.data(), coalesced_.size(), ec);
    co_return;
  }
  co_await WriteAll(a.data(), a.size(), ec);
  if (!ec) co_await WriteAll(b.data(), b.size(), ec);
}

}  // namespace weft::proxy
