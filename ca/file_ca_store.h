// CaStore on a local directory (--ca-dir): the directory is 0700, private
// keys 0600, other files 0644 so that proxies on the host can read the trust
// bundle root-cert.pem. Every file is replaced atomically (write, fsync,
// rename).
#pragma once

#include <string>

#include "ca/ca_store.h"

namespace weft::ca {

class FileCaStore final : public CaStore {
 public:
  // Creates the directory (and its parents) when missing.
  static absl::StatusOr<std::unique_ptr<FileCaStore>> Open(const std::string& dir);

  std::string Describe() const override { return "directory " + dir_; }
  absl::StatusOr<CaEntries> Load(const std::vector<std::string>& names) override;
  absl::Status Save(const CaEntries& entries, const std::vector<std::string>& remove) override;
  absl::StatusOr<std::unique_ptr<Lock>> LockExclusive() override;

  const std::string& dir() const { return dir_; }

 private:
  explicit FileCaStore(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
};

// Atomically replaces `path` with `content` at `mode`.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content, int mode);

}  // namespace weft::ca
