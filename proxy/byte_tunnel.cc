#include "proxy/byte_tunnel.h"

#include <asio/experimental/awaitable_operators.hpp>
#include <vector>

namespace weft::proxy {
namespace {

using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

constexpr size_t kPiece = 16 * 1024;

struct TunnelState {
  ByteStream& down;
  ByteStream& up;
  asio::steady_timer idle;
  Clock::time_point last_activity = Clock::now();
  bool done = false;
  bool idle_fired = false;
  int open_directions = 2;

  // A direction whose source ended cleanly (its write half was passed on).
  void DirectionEnded() {
    if (--open_directions == 0) Finish();
  }
  // Both directions ended, an error or the idle timeout: both streams close.
  void Finish() {
    if (done) return;
    done = true;
    down.Close();
    up.Close();
    idle.cancel();
  }
};

awaitable<void> Pump(TunnelState& state, ByteStream& from, ByteStream& to, std::string early, uint64_t& total,
                     common::Counter* counter) {
  std::error_code ec;
  if (!early.empty()) {
    co_await to.Write(early, ec);
    total += early.size();
    if (counter != nullptr) counter->Inc(static_cast<double>(early.size()));
  }
  std::vector<char> buf(kPiece);
  while (!ec && !state.done) {
    size_t n = co_await from.ReadSome(asio::buffer(buf), ec);
    if (n == 0 && (!ec || ec == asio::error::eof)) {
      // The source's end of stream (FIN, or close_notify over TLS) is
      // passed on as one; the other direction keeps flowing.
      if (state.done) co_return;
      state.last_activity = Clock::now();
      co_await to.ShutdownWrite(ec);
      if (ec) break;
      state.DirectionEnded();
      co_return;
    }
    if (ec) break;
    state.last_activity = Clock::now();
    co_await to.Write(std::string_view(buf.data(), n), ec);
    total += n;
    if (counter != nullptr) counter->Inc(static_cast<double>(n));
  }
  state.Finish();
}

awaitable<void> Watch(TunnelState& state, uint64_t idle_ms) {
  const auto idle = std::chrono::milliseconds(idle_ms);
  while (!state.done) {
    state.idle.expires_at(state.last_activity + idle);
    std::error_code ec;
    co_await state.idle.async_wait(redirect_error(use_awaitable, ec));
    if (state.done) break;
    if (Clock::now() >= state.last_activity + idle) {
      state.idle_fired = true;
      state.Finish();
    }
  }
}

}  // namespace

awaitable<TunnelResult> RunTunnel(ByteStream& downstream, ByteStream& upstream, TunnelOptions options) {
  using namespace asio::experimental::awaitable_operators;
  TunnelState state{downstream, upstream, asio::steady_timer(co_await asio::this_coro::executor)};
  TunnelResult result;
  auto forward = Pump(state, downstream, upstream, std::move(options.downstream_early),
                      result.downstream_to_upstream, options.downstream_to_upstream_bytes);
  auto backward = Pump(state, upstream, downstream, std::move(options.upstream_early),
                       result.upstream_to_downstream, options.upstream_to_downstream_bytes);
  if (options.idle_timeout_ms > 0) {
    co_await (std::move(forward) && std::move(backward) && Watch(state, options.idle_timeout_ms));
  } else {
    co_await (std::move(forward) && std::move(backward));
  }
  result.idle_timeout = state.idle_fired;
  co_return result;
}

}  // namespace weft::proxy
