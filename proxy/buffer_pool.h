// Read buffers of the data path, kept per worker and reused, so that a
// forwarded request neither allocates nor zero-fills a 16 KB read buffer.
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

// A connection's read buffer: kSmallBytes of its own, and one of the pool's
// once a read has filled those (a large head, a body), until Shrink(). A
// small request and its response never take a pooled buffer, so a
// connection waiting for its client or its upstream holds 2 KB instead of
// 16 KB (docs/benchmarks.md, "Session 7").
class ReadBuffer {
 public:
  static constexpr size_t kSmallBytes = 2048;

  explicit ReadBuffer(BufferPool& pool) : pool_(pool) {}
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  // Where the next read goes. What an earlier read put there must have been
  // consumed: data() may move to another buffer after Filled().
  char* data() { return lease_ ? lease_->buffer().data() : small_; }
  size_t size() { return lease_ ? lease_->buffer().size() : kSmallBytes; }
  // After a read of `n` bytes into data(): one that filled the small buffer
  // sends the following reads to a pooled one. The bytes just read stay
  // where they are until the next read.
  void Filled(size_t n) {
    if (!lease_ && n == kSmallBytes) lease_ = std::make_unique<BufferPool::Lease>(pool_);
  }
  // Back to the small buffer (between requests).
  void Shrink() { lease_.reset(); }
  bool pooled() const { return lease_ != nullptr; }

 private:
  BufferPool& pool_;
  std::unique_ptr<BufferPool::Lease> lease_;  // (not std::optional: GCC 12 warns falsely of it)
  char small_[kSmallBytes];
};

}  // namespace weft::proxy
