// File-mode bearer tokens: `<config-dir>/tokens.yaml` (DESIGN.md §5)
//
//   tokens:
//   - token: "<opaque secret>"
//     namespace: shop
//     serviceAccount: orders
//
// The file is re-read when its modification time, size or inode change,
// checked at most once per `poll` on the injected clock (no thread). A file
// that fails to parse keeps the last good set in force and logs why; a
// missing file means no tokens. Tokens are kept only as SHA-256 digests.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <sys/types.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ca/authenticator.h"
#include "common/clock.h"

namespace weft::ca {

class TokenFileAuthenticator final : public Authenticator {
 public:
  TokenFileAuthenticator(std::string path, std::string trust_domain, const common::Clock& clock,
                         std::chrono::milliseconds poll = std::chrono::seconds(1));

  absl::string_view Name() const override { return "token-file"; }
  absl::StatusOr<std::optional<SpiffeId>> Authenticate(const CallerCredentials& credentials) override;

  // Parses the file's content: digest of each token → identity. Errors name
  // the entry and field, all in one message.
  static absl::StatusOr<std::map<std::string, SpiffeId>> Parse(const std::string& yaml,
                                                               const std::string& trust_domain);

  // How many tokens are loaded now (after a reload check).
  size_t TokenCount();

 private:
  void MaybeReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const std::string trust_domain_;
  const common::Clock& clock_;
  const std::chrono::milliseconds poll_;

  absl::Mutex mu_;
  bool checked_once_ ABSL_GUARDED_BY(mu_) = false;
  common::Clock::TimePoint last_check_ ABSL_GUARDED_BY(mu_){};
  struct FileStamp {
    bool exists = false;
    int64_t mtime_ns = 0;
    int64_t size = 0;
    uint64_t inode = 0;
    bool operator==(const FileStamp& o) const {
      return exists == o.exists && mtime_ns == o.mtime_ns && size == o.size && inode == o.inode;
    }
  };
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, SpiffeId> tokens_ ABSL_GUARDED_BY(mu_);  // SHA-256 hex → identity
};

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace weft::ca
