#include "proxy/grpc_call.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/message_lite.h"

namespace weft::proxy {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kWindowBytes = 1 << 20;  // per stream and for the connection
constexpr size_t kReadChunk = 16 * 1024;

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// HOST:PORT or [V6]:PORT.
absl::Status SplitTarget(const std::string& target, std::string* host, std::string* port) {
  size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon + 1 == target.size()) {
    return absl::InvalidArgumentError(absl::StrCat("target '", target, "' is not HOST:PORT"));
  }
  *host = target.substr(0, colon);
  *port = target.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  if (host->empty()) return absl::InvalidArgumentError(absl::StrCat("target '", target, "' has no host"));
  return absl::OkStatus();
}

absl::StatusCode CodeForReset(uint32_t error_code) {
  switch (error_code) {
    case NGHTTP2_REFUSED_STREAM:
      return absl::StatusCode::kUnavailable;
    case NGHTTP2_CANCEL:
      return absl::StatusCode::kCancelled;
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return absl::StatusCode::kResourceExhausted;
    case NGHTTP2_INADEQUATE_SECURITY:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::StatusCode GrpcCodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return absl::StatusCode::kInternal;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

class GrpcCall::Impl {
 public:
  explicit Impl(GrpcCallOptions options) : options_(std::move(options)) {}
  ~Impl() {
    if (session_ != nullptr) nghttp2_session_del(session_);
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    std::lock_guard<std::mutex> lock(fd_mu_);
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Start(std::string_view path) {
    absl::Status s = Connect();
    if (s.ok()) s = Handshake();
    if (s.ok()) s = OpenStream(path);
    if (!s.ok()) Fail(s);
    return Finished();
  }

  bool Write(const google::protobuf::MessageLite& message) {
    if (Ended() || writes_done_) return false;
    const size_t size = message.ByteSizeLong();
    if (size > 0xffffffffu) return Fail(absl::InvalidArgumentError("request message over 4 GB"));
    const size_t at = out_.size();
    out_.resize(at + 5 + size);
    auto* p = reinterpret_cast<uint8_t*>(out_.data() + at);
    p[0] = 0;  // not compressed
    p[1] = static_cast<uint8_t>(size >> 24);
    p[2] = static_cast<uint8_t>(size >> 16);
    p[3] = static_cast<uint8_t>(size >> 8);
    p[4] = static_cast<uint8_t>(size);
    if (!message.SerializeToArray(p + 5, static_cast<int>(size))) {
      out_.resize(at);
      return Fail(absl::InternalError("cannot serialize the request message"));
    }
    return SendBody();
  }

  bool WritesDone() {
    if (Ended()) return false;
    writes_done_ = true;
    return SendBody();
  }

  bool Read(google::protobuf::MessageLite* message) {
    for (;;) {
      const size_t buffered = in_.size();
      if (buffered >= 5) {
        const auto* p = reinterpret_cast<const uint8_t*>(in_.data());
        const size_t len = (size_t{p[1]} << 24) | (size_t{p[2]} << 16) | (size_t{p[3]} << 8) | p[4];
        if (len > options_.max_receive_message_bytes) {
          return Reset(
              absl::ResourceExhaustedError(absl::StrCat("response message of ", len, " bytes is over the ",
                                                        options_.max_receive_message_bytes, "-byte limit")));
        }
        if (p[0] != 0)
          return Reset(absl::InternalError("compressed response message, but none was accepted"));
        if (buffered >= 5 + len) {
          bool parsed = message->ParseFromArray(p + 5, static_cast<int>(len));
          in_.erase(0, 5 + len);  // usually all of it: weftd's messages end where reads end
          if (!parsed) return Reset(absl::InternalError("cannot parse the response message"));
          return true;
        }
      }
      if (Ended()) {
        if (failure_.ok() && !cancelled_ && buffered > 0) {
          failure_ = absl::InternalError("the response ends inside a message");
        }
        return false;
      }
      if (!Pump()) return false;
    }
  }

  absl::Status Finish() {
    while (!Ended()) {
      if (!Pump()) break;
    }
    return Finished();
  }

  void Cancel() {
    cancelled_ = true;
    std::lock_guard<std::mutex> lock(fd_mu_);
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  }

 private:
  // --- status ---
  bool Ended() const { return !failure_.ok() || stream_closed_; }

  bool Fail(absl::Status status) {
    if (cancelled_) status = absl::CancelledError("the call was cancelled");
    if (failure_.ok() && !stream_closed_) failure_ = std::move(status);
    return false;
  }

  // Ends the stream from this side with RST_STREAM CANCEL, as gRPC does.
  bool Reset(absl::Status status) {
    const bool open = session_ != nullptr && stream_id_ > 0 && !stream_closed_;
    Fail(std::move(status));  // first: the reset closes the stream
    if (open) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id_, NGHTTP2_CANCEL);
      (void)Flush();
    }
    return false;
  }

  absl::Status Finished() const {
    if (cancelled_) return absl::CancelledError("the call was cancelled");
    if (!failure_.ok()) return failure_;
    if (!stream_closed_) return absl::OkStatus();  // still going (Start's answer)
    if (!grpc_status_ && reset_code_ != NGHTTP2_NO_ERROR) {
      return absl::Status(CodeForReset(reset_code_),
                          absl::StrCat("stream reset by weftd: ", nghttp2_http2_strerror(reset_code_)));
    }
    if (http_status_ != 200) {
      return absl::Status(GrpcCodeForHttpStatus(http_status_),
                          http_status_ == 0 ? std::string("no response headers")
                                            : absl::StrCat("HTTP status ", http_status_));
    }
    if (!grpc_status_) return absl::InternalError("the response has no grpc-status");
    if (*grpc_status_ < 0 || *grpc_status_ > 16) {
      return absl::UnknownError(absl::StrCat("grpc-status ", *grpc_status_, ": ", grpc_message_));
    }
    return absl::Status(static_cast<absl::StatusCode>(*grpc_status_), grpc_message_);
  }

  // --- time ---
  // Milliseconds poll() may wait, or -1 for ever; 0 with *expired when the
  // deadline has passed.
  int PollTimeout(std::optional<Clock::time_point> until, bool* expired) const {
    *expired = false;
    if (!until) return -1;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*until - Clock::now()).count();
    if (left <= 0) {
      *expired = true;
      return 0;
    }
    return static_cast<int>(std::min<int64_t>(left + 1, 60 * 60 * 1000));
  }

  // Waits until the socket is ready for `events`.
  bool WaitFor(short events, std::optional<Clock::time_point> until, const char* what) {
    for (;;) {
      if (cancelled_) return Fail(absl::CancelledError("the call was cancelled"));
      bool expired = false;
      int timeout = PollTimeout(until, &expired);
      if (expired) return Fail(absl::DeadlineExceededError(absl::StrCat("deadline exceeded ", what)));
      pollfd p{fd_, events, 0};
      int n = poll(&p, 1, timeout);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(absl::UnavailableError(absl::StrCat("poll: ", strerror(errno))));
      if (n > 0) return true;  // ready, or an error the next call reports
    }
  }

  // --- connection ---
  absl::Status Connect() {
    std::string host, port;
    if (absl::Status s = SplitTarget(options_.target, &host, &port); !s.ok()) return s;
    host_ = host;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
    auto connect_until = Clock::now() + options_.connect_timeout;
    if (options_.deadline && *options_.deadline < connect_until) connect_until = *options_.deadline;
    std::string errors;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      {
        std::lock_guard<std::mutex> lock(fd_mu_);
        if (cancelled_) {
          close(fd);
          return absl::CancelledError("the call was cancelled");
        }
        fd_ = fd;
      }
      int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
      int err = rc == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        if (WaitFor(POLLOUT, connect_until, "connecting")) {
          socklen_t len = sizeof(err);
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        } else {
          absl::Status why = failure_;
          failure_ = absl::OkStatus();
          if (cancelled_) return why;
          err = ETIMEDOUT;
        }
      }
      if (err == 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        // A weftd that vanished without closing (its node died) is noticed
        // in about a minute rather than never: the stream is otherwise quiet.
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        int idle = 30, interval = 10, count = 3;
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
        return absl::OkStatus();
      }
      absl::StrAppend(&errors, errors.empty() ? "" : "; ", strerror(err));
      std::lock_guard<std::mutex> lock(fd_mu_);
      close(fd_);
      fd_ = -1;
    }
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", options_.target, ": ", errors.empty() ? "no address" : errors));
  }

  absl::Status Handshake() {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return absl::InternalError("SSL_CTX_new: " + ca::DrainOpenSslErrors());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    auto roots = ca::ParseCertificatesPem(options_.roots_pem);
    if (!roots.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("the roots for weftd: ", roots.status().message()));
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    for (const auto& root : *roots) X509_STORE_add_cert(store, root.get());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof(kAlpn));
    if (options_.client_key != nullptr && options_.client_chain != nullptr &&
        !options_.client_chain->empty()) {
      const auto& chain = *options_.client_chain;
      if (SSL_CTX_use_certificate(ctx_, chain[0].get()) != 1 ||
          SSL_CTX_use_PrivateKey(ctx_, options_.client_key) != 1) {
        return absl::InternalError("the client certificate: " + ca::DrainOpenSslErrors());
      }
      for (size_t i = 1; i < chain.size(); ++i) SSL_CTX_add1_chain_cert(ctx_, chain[i].get());
    }
    ssl_ = SSL_new(ctx_);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1)
      return absl::InternalError("SSL_new: " + ca::DrainOpenSslErrors());
    const std::string name = options_.server_name.empty() ? host_ : options_.server_name;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (IsIpLiteral(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_, name.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    }
    auto until = Clock::now() + options_.connect_timeout;
    if (options_.deadline && *options_.deadline < until) until = *options_.deadline;
    for (;;) {
      ERR_clear_error();
      int rc = SSL_connect(ssl_);
      if (rc == 1) break;
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (!WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until, "in the TLS handshake"))
          return failure_;
        continue;
      }
      std::string why;
      if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
        why = absl::StrCat("weftd's certificate: ", X509_verify_cert_error_string(v), " (expected name ",
                           name, ")");
      } else {
        why = ca::DrainOpenSslErrors();
        if (why.empty())
          why = err == SSL_ERROR_SYSCALL ? std::string("connection closed") : "error " + std::to_string(err);
      }
      if (cancelled_) return absl::CancelledError("the call was cancelled");
      return absl::UnavailableError(absl::StrCat("TLS handshake with ", options_.target, ": ", why));
    }
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
      return absl::UnavailableError(absl::StrCat(options_.target, " did not agree to HTTP/2 (ALPN h2)"));
    }
    return absl::OkStatus();
  }

  absl::Status OpenStream(std::string_view path) {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &Impl::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Impl::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Impl::OnStreamClose);
    int rc = nghttp2_session_client_new(&session_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    if (rc != 0)
      return absl::InternalError(absl::StrCat("nghttp2_session_client_new: ", nghttp2_strerror(rc)));
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                               {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kWindowBytes}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kWindowBytes);

    const std::string authority = options_.server_name.empty() ? options_.target : options_.server_name;
    std::vector<std::pair<std::string, std::string>> headers = {{":method", "POST"},
                                                                {":scheme", "https"},
                                                                {":path", std::string(path)},
                                                                {":authority", authority},
                                                                {"content-type", "application/grpc"},
                                                                {"te", "trailers"},
                                                                {"user-agent", "weft-proxy"},
                                                                {"grpc-accept-encoding", "identity"}};
    if (options_.deadline) {
      auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(*options_.deadline - Clock::now()).count();
      headers.emplace_back("grpc-timeout", absl::StrCat(std::max<int64_t>(ms, 1), "m"));
    }
    for (const auto& kv : options_.metadata) headers.push_back(kv);
    std::vector<nghttp2_nv> nva;
    for (auto& [k, v] : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()), k.size(),
                     v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider body{};
    body.read_callback = &Impl::ReadBody;
    stream_id_ = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &body, this);
    if (stream_id_ < 0)
      return absl::InternalError(absl::StrCat("nghttp2_submit_request: ", nghttp2_strerror(stream_id_)));
    if (!Flush()) return failure_;
    return absl::OkStatus();
  }

  // --- I/O ---
  // Hands the queued request bytes to nghttp2 and sends them, reading while
  // flow control holds them back.
  bool SendBody() {
    nghttp2_session_resume_data(session_, stream_id_);
    if (!Flush()) return false;
    while (!Ended() && out_off_ < out_.size()) {
      if (!Pump()) return false;
    }
    return !Ended();
  }

  // Sends everything nghttp2 has queued.
  bool Flush() {
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0)
        return Fail(absl::InternalError(absl::StrCat("HTTP/2: ", nghttp2_strerror(static_cast<int>(n)))));
      if (n == 0) return true;
      while (n > 0) {
        ERR_clear_error();
        int w = SSL_write(ssl_, data, static_cast<int>(n));
        if (w > 0) {
          data += w;
          n -= w;
          continue;
        }
        int err = SSL_get_error(ssl_, w);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
          if (!WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, options_.deadline, "sending"))
            return false;
          continue;
        }
        return Fail(
            absl::UnavailableError(absl::StrCat("connection to ", options_.target, " lost while sending")));
      }
    }
  }

  // Reads what arrives (waiting for it), feeds it to nghttp2 and sends what
  // that makes nghttp2 answer (SETTINGS and PING acknowledgements, window
  // updates).
  bool Pump() {
    uint8_t buf[kReadChunk];
    for (;;) {
      if (cancelled_) return Fail(absl::CancelledError("the call was cancelled"));
      ERR_clear_error();
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        ssize_t used = nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n));
        if (used < 0) {
          return Fail(absl::InternalError(
              absl::StrCat("HTTP/2 from weftd: ", nghttp2_strerror(static_cast<int>(used)))));
        }
        if (!failure_.ok()) return false;
        return Flush();
      }
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (!WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, options_.deadline, "waiting for weftd")) {
          if (failure_.code() == absl::StatusCode::kDeadlineExceeded) Reset(failure_);
          return false;
        }
        continue;
      }
      if (stream_closed_) return true;  // GOAWAY and close after the stream ended
      return Fail(absl::UnavailableError(absl::StrCat("connection to ", options_.target, " closed")));
    }
  }

  // --- nghttp2 callbacks ---
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    auto* self = static_cast<Impl*>(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != self->stream_id_) return 0;
    std::string_view k(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (k == ":status") {
      int status = 0;
      if (absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &status)) self->http_status_ = status;
    } else if (k == "grpc-status") {
      int code = 0;
      self->grpc_status_ = absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &code)
                               ? code
                               : static_cast<int>(absl::StatusCode::kUnknown);
    } else if (k == "grpc-message") {
      self->grpc_message_ = PercentDecode(v);
    }
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user_data) {
    auto* self = static_cast<Impl*>(user_data);
    if (stream_id != self->stream_id_) return 0;
    // Bounded: a message over the limit is refused by Read() as soon as its
    // prefix is seen, and flow control keeps the rest within the window.
    self->in_.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user_data) {
    auto* self = static_cast<Impl*>(user_data);
    if (stream_id != self->stream_id_) return 0;
    self->stream_closed_ = true;
    self->reset_code_ = error_code;
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* data_flags,
                          nghttp2_data_source*, void* user_data) {
    auto* self = static_cast<Impl*>(user_data);
    size_t n = std::min(length, self->out_.size() - self->out_off_);
    memcpy(buf, self->out_.data() + self->out_off_, n);
    self->out_off_ += n;
    if (self->out_off_ == self->out_.size()) {
      self->out_.clear();
      self->out_off_ = 0;
      if (self->writes_done_) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    if (n == 0 && !self->writes_done_) return NGHTTP2_ERR_DEFERRED;
    return static_cast<ssize_t>(n);
  }

  const GrpcCallOptions options_;
  std::string host_;
  std::mutex fd_mu_;  // fd_ against Cancel() from another thread
  int fd_ = -1;
  std::atomic<bool> cancelled_{false};
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;
  int32_t stream_id_ = -1;

  std::string out_;  // framed request messages nghttp2 has not taken yet
  size_t out_off_ = 0;
  bool writes_done_ = false;
  std::string in_;  // response DATA not yet returned by Read()

  int http_status_ = 0;
  std::optional<int> grpc_status_;
  std::string grpc_message_;
  bool stream_closed_ = false;
  uint32_t reset_code_ = NGHTTP2_NO_ERROR;
  absl::Status failure_;  // what ended the call from this side
};

GrpcCall::GrpcCall(GrpcCallOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
GrpcCall::~GrpcCall() = default;
absl::Status GrpcCall::Start(std::string_view path) { return impl_->Start(path); }
bool GrpcCall::Write(const google::protobuf::MessageLite& message) { return impl_->Write(message); }
bool GrpcCall::WritesDone() { return impl_->WritesDone(); }
bool GrpcCall::Read(google::protobuf::MessageLite* message) { return impl_->Read(message); }
absl::Status GrpcCall::Finish() { return impl_->Finish(); }
void GrpcCall::Cancel() { impl_->Cancel(); }

absl::Status GrpcUnaryCall(const GrpcCallOptions& options, std::string_view path,
                           const google::protobuf::MessageLite& request,
                           google::protobuf::MessageLite* response) {
  GrpcCall call(options);
  if (absl::Status s = call.Start(path); !s.ok()) return s;
  call.Write(request);
  call.WritesDone();
  bool got = call.Read(response);
  absl::Status status = call.Finish();
  if (status.ok() && !got) return absl::InternalError("the response has no message");
  return status;
}

}  // namespace weft::proxy
