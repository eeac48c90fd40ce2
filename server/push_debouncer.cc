#include "server/push_debouncer.h"

#include <algorithm>

namespace weft::server {

PushDebouncer::PushDebouncer(common::Clock& clock, DebounceOptions options, Flush flush)
    : clock_(clock), options_(options), flush_(std::move(flush)) {}

PushDebouncer::~PushDebouncer() { Stop(); }

void PushDebouncer::Add(discovery::MeshSnapshotConstSharedPtr mesh) {
  bool immediate = false;
  common::Clock::TimePoint now = clock_.Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_) first_change_ = now;
    last_change_ = now;
    pending_ = std::move(mesh);
    immediate = !flushed_any_;
  }
  if (immediate) {
    Poll();
    return;
  }
  cv_.notify_all();
}

std::optional<common::Clock::TimePoint> PushDebouncer::NextDeadlineLocked() const {
  if (!pending_) return std::nullopt;
  if (!flushed_any_) return first_change_;
  return std::min(last_change_ + options_.quiet_period, first_change_ + options_.max_delay);
}

std::optional<common::Clock::TimePoint> PushDebouncer::Poll() {
  std::lock_guard<std::mutex> flush_lock(flush_mu_);
  discovery::MeshSnapshotConstSharedPtr mesh;
  common::Clock::TimePoint first_change;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto deadline = NextDeadlineLocked();
    if (!deadline) return std::nullopt;
    if (clock_.Now() < *deadline) return deadline;
    mesh = std::move(pending_);
    pending_.reset();
    first_change = first_change_;
    flushed_any_ = true;
    flushes_++;
  }
  flush_(std::move(mesh), first_change);
  std::lock_guard<std::mutex> lock(mu_);
  return NextDeadlineLocked();
}

void PushDebouncer::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      auto deadline = NextDeadlineLocked();
      if (!deadline) {
        cv_.wait(lock);
        continue;
      }
      auto now = clock_.Now();
      if (now < *deadline) {
        cv_.wait_for(lock, *deadline - now);
        continue;
      }
      lock.unlock();
      Poll();
      lock.lock();
    }
  });
}

void PushDebouncer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t PushDebouncer::flushes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return flushes_;
}

}  // namespace weft::server
