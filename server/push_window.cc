#include "server/push_window.h"

namespace weft::server {

PushWindow::PushWindow(size_t size, absl::Duration slot_timeout, common::MetricsRegistry* metrics)
    : size_(size), slot_timeout_(slot_timeout) {
  if (metrics == nullptr) return;
  in_use_gauge_ =
      &metrics->GetGauge("weft_xds_push_window_in_use", "Proxies with a pushed update not yet answered.");
  waits_ =
      &metrics->GetCounter("weft_xds_push_window_waits_total",
                           "Pushes that waited for proxies to answer earlier ones (--push-window full).");
  overruns_ =
      &metrics->GetCounter("weft_xds_push_window_overruns_total",
                           "Pushes sent over the --push-window bound (from a thread that may not wait).");
  timeouts_ =
      &metrics->GetCounter("weft_xds_push_window_timeouts_total",
                           "Pushes not answered in time, whose slot was given back without an answer.");
}

void PushWindow::ExpireLocked(absl::Time now) {
  while (!held_.empty() && held_.begin()->second + slot_timeout_ <= now) {
    held_.erase(held_.begin());
    if (timeouts_ != nullptr) timeouts_->Inc();
  }
}

void PushWindow::UpdateGaugeLocked() {
  if (in_use_gauge_ != nullptr) in_use_gauge_->Set(static_cast<double>(held_.size()));
}

uint64_t PushWindow::Acquire(bool may_wait) {
  absl::MutexLock lock(&mu_);
  // Always, so that slots of proxies that never answer do not pile up
  // (also without a bound, where nothing else would drop them).
  ExpireLocked(absl::Now());
  if (size_ > 0 && held_.size() >= size_) {
    if (!may_wait) {
      if (overruns_ != nullptr) overruns_->Inc();
    } else {
      if (waits_ != nullptr) waits_->Inc();
      auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.size() < size_; };
      // Until a slot is given back, or the oldest one times out.
      while (!mu_.AwaitWithDeadline(absl::Condition(&free), held_.begin()->second + slot_timeout_)) {
        ExpireLocked(absl::Now());
        if (held_.size() < size_) break;
      }
    }
  }
  const uint64_t slot = next_slot_++;
  held_.emplace(slot, absl::Now());
  UpdateGaugeLocked();
  return slot;
}

void PushWindow::Release(uint64_t slot) {
  absl::MutexLock lock(&mu_);
  held_.erase(slot);
  UpdateGaugeLocked();
}

size_t PushWindow::in_use() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

}  // namespace weft::server
