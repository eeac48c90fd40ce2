// The most recent certificates the CA issued (serial, identity, validity),
// bounded, for GET /api/v1/certificates. Thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "ca/x509.h"

namespace weft::ca {

struct IssuedRecord {
  std::string serial_hex;
  std::string identity;       // SPIFFE ID, or the DNS names of a serving certificate
  std::string authenticator;  // how the caller proved it ("token-file", "mesh-certificate", "weftd")
  WallTime issued_at{};
  WallTime not_after{};
};

class IssuedCertificateLog {
 public:
  explicit IssuedCertificateLog(size_t capacity = 10000) : capacity_(capacity) {}

  void Add(IssuedRecord record);
  // Newest first, at most `limit`.
  std::vector<IssuedRecord> Recent(size_t limit) const;
  uint64_t Total() const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<IssuedRecord> records_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace weft::ca
