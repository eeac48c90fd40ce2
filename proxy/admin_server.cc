#include "proxy/admin_server.h"

#include <thread>

#include "proxy/byte_stream.h"
#include "proxy/http_codec.h"
#include "proxy/proxy_server.h"

namespace weft::proxy {

using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;

class AdminServer::Impl {
 public:
  Impl(std::string addr, AdminHandler handler) : addr_(std::move(addr)), handler_(std::move(handler)) {}

  absl::Status Start() {
    auto hp = ParseHostPort(addr_);
    if (!hp.ok()) return absl::InvalidArgumentError("--admin-addr: " + std::string(hp.status().message()));
    std::error_code ec;
    auto ip = asio::ip::make_address(hp->first, ec);
    if (ec) return absl::InvalidArgumentError("--admin-addr: \"" + hp->first + "\" is not an IP address");
    tcp::endpoint ep(ip, hp->second);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return absl::UnavailableError("--admin-addr: cannot listen on " + addr_ + ": " + ec.message());
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  void Stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  awaitable<void> Accept() {
    for (;;) {
      std::error_code ec;
      tcp::socket s = co_await acceptor_.async_accept(redirect_error(use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(io_, Serve(std::move(s)), asio::detached);
    }
  }

  awaitable<void> Serve(tcp::socket socket) {
    TcpStream stream(std::move(socket));
    HttpParser parser(HttpParser::Kind::kRequest);
    std::string pending;
    char buf[8192];
    for (;;) {
      std::error_code ec;
      while (!parser.events().message_complete) {
        if (pending.empty()) {
          size_t n = co_await stream.ReadSome(asio::buffer(buf), ec);
          if (ec || n == 0) co_return;
          pending.assign(buf, n);
        }
        auto consumed = parser.Feed(pending);
        if (!consumed.ok() || parser.events().body.size() > 65536) {
          co_await stream.Write(SimpleResponse(400, "text/plain", "bad request\n", false), ec);
          co_return;
        }
        pending.erase(0, *consumed);
      }
      const HttpHead& head = parser.head();
      AdminResponse r = handler_(head.method, head.target);
      bool keep = head.keep_alive;
      co_await stream.Write(SimpleResponse(r.status, r.content_type, r.body, keep), ec);
      if (ec || !keep) co_return;
      parser.Reset();
    }
  }

  std::string addr_;
  AdminHandler handler_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
};

AdminServer::AdminServer(std::string addr, AdminHandler handler)
    : impl_(std::make_unique<Impl>(std::move(addr), std::move(handler))) {}
AdminServer::~AdminServer() { Stop(); }
absl::Status AdminServer::Start() { return impl_->Start(); }
void AdminServer::Stop() { impl_->Stop(); }

}  // namespace weft::proxy
