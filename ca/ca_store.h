// Where the CA's certificates and keys persist: named PEM entries
// ("ca-cert.pem", "root-key.pem", ...). FileCaStore keeps them as files in
// --ca-dir; a Kubernetes Secret store (--ca-secret, one data key per entry)
// comes with the Kubernetes client. RootRotator is the only caller.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft::ca {

using CaEntries = std::map<std::string, std::string>;

class CaStore {
 public:
  virtual ~CaStore() = default;

  // For messages: "directory /var/lib/weft/ca".
  virtual std::string Describe() const = 0;

  // The entries among `names` that exist.
  virtual absl::StatusOr<CaEntries> Load(const std::vector<std::string>& names) = 0;

  // Creates or replaces `entries` (private keys readable by the owner only),
  // then removes `remove`.
  virtual absl::Status Save(const CaEntries& entries, const std::vector<std::string>& remove) = 0;

  // Held while a CA is loaded or created, so that two processes starting on
  // one store at once end up with the same CA.
  class Lock {
   public:
    virtual ~Lock() = default;
  };
  virtual absl::StatusOr<std::unique_ptr<Lock>> LockExclusive() = 0;
};

}  // namespace weft::ca
