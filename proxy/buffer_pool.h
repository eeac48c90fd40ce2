// Read buffers of the data path, kept per worker and reused, so that a
// forwarded request neither allocates nor zero-fills its 16 KB read buffer.
// Not thread-safe: one pool per worker thread, leases used on that thread.
// A pool must outlive its leases (declare it before the io_context whose
// coroutines hold them).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace weft::proxy {

class BufferPool {
 public:
  BufferPool(size_t buffer_size, size_t max_idle) : buffer_size_(buffer_size), max_idle_(max_idle) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of buffer_size bytes (contents unspecified) until it goes out of scope.
  class Lease {
   public:
    explicit Lease(BufferPool& pool) : pool_(pool) {
      if (pool_.idle_.empty()) {
        buffer_.resize(pool_.buffer_size_);
      } else {
        buffer_ = std::move(pool_.idle_.back());
        pool_.idle_.pop_back();
      }
    }
    ~Lease() {
      if (pool_.idle_.size() < pool_.max_idle_) pool_.idle_.push_back(std::move(buffer_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    std::vector<char>& buffer() { return buffer_; }

   private:
    BufferPool& pool_;
    std::vector<char> buffer_;
  };

  size_t idle() const { return idle_.size(); }

 private:
  const size_t buffer_size_;
  const size_t max_idle_;
  std::vector<std::vector<char>> idle_;
};

}  // namespace weft::proxy
