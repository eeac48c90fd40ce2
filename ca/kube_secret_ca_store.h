// CaStore on a Kubernetes Secret (--ca-secret=NS/NAME): one data key per
// entry ("ca-cert.pem", "root-key.pem", "rotation.json", ...), type Opaque.
// Writes use the Kubernetes API's optimistic concurrency instead of a lock:
// the first Save after a Load creates the Secret (POST) or replaces it (PUT
// with the resourceVersion that Load saw); when another writer got there
// first (409 AlreadyExists or Conflict) Save returns ABORTED and forgets what
// it saw, so RootRotator::Open loads the winner's CA and a later Save merges
// onto the Secret as it is then. The HTTP call is injected (weftd passes the
// discovery module's KubeClient) so that weft_ca does not link discovery.
#pragma once

#include <functional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "ca/ca_store.h"

namespace weft::ca {

struct KubeHttpResponse {
  int status = 0;
  std::string body;
};
// (method, path, JSON body) -> response; a transport failure is a Status.
using KubeHttp = std::function<absl::StatusOr<KubeHttpResponse>(
    const std::string& method, const std::string& path, const std::string& body)>;

class KubeSecretCaStore final : public CaStore {
 public:
  // `ref` is NS/NAME (both DNS-1123 names); INVALID_ARGUMENT otherwise.
  static absl::StatusOr<std::unique_ptr<KubeSecretCaStore>> Create(const std::string& ref, KubeHttp http);

  std::string Describe() const override { return "Secret " + ns_ + "/" + name_; }
  absl::StatusOr<CaEntries> Load(const std::vector<std::string>& names) override;
  absl::Status Save(const CaEntries& entries, const std::vector<std::string>& remove) override;
  // A no-op: the API server's resourceVersion checks take a lock's place.
  absl::StatusOr<std::unique_ptr<Lock>> LockExclusive() override;

 private:
  KubeSecretCaStore(std::string ns, std::string name, KubeHttp http)
      : ns_(std::move(ns)), name_(std::move(name)), http_(std::move(http)) {}
  std::string Path() const;
  // GETs the Secret into the fields below.
  absl::Status Refresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string ns_;
  const std::string name_;
  const KubeHttp http_;

  absl::Mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;  // the fields below reflect the last read or write
  bool exists_ ABSL_GUARDED_BY(mu_) = false;
  std::string resource_version_ ABSL_GUARDED_BY(mu_);
  CaEntries data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::ca
