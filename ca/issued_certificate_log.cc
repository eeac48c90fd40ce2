#include "ca/issued_certificate_log.h"

namespace weft::ca {

void IssuedCertificateLog::Add(IssuedRecord record) {
  absl::MutexLock lock(&mu_);
  records_.push_back(std::move(record));
  ++total_;
  while (records_.size() > capacity_) records_.pop_front();
}

std::vector<IssuedRecord> IssuedCertificateLog::Recent(size_t limit) const {
  absl::MutexLock lock(&mu_);
  std::vector<IssuedRecord> out;
  for (auto it = records_.rbegin(); it != records_.rend() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

uint64_t IssuedCertificateLog::Total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

}  // namespace weft::ca
