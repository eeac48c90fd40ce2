// The proxy's own identity: an ECDSA P-256 key generated in memory (never
// written anywhere), a certificate for spiffe://TD/ns/NS/sa/SA obtained from
// weftd's CreateCertificate with the bearer token from --token-file, and the
// trust bundle. Renewed at half life with a fresh key; callers read the
// current one through Current() and hear of changes through the callback.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ca/x509.h"
#include "common/metrics.h"
#include "proxy/grpc_call.h"

namespace weft::proxy {

struct WorkloadIdentity {
  std::string spiffe_id;
  ca::EvpPkeyPtr key;
  std::vector<ca::X509Ptr> chain;      // leaf first
  std::string chain_pem;
  std::string bundle_pem;              // roots from CreateCertificate (falls back to --trust-bundle)
  ca::WallTime not_before, not_after;
  ca::WallTime obtained;  // when CreateCertificate answered
  uint64_t generation = 0;
};
using WorkloadIdentityConstSharedPtr = std::shared_ptr<const WorkloadIdentity>;

// When to renew: half way through the part of the lifetime that remained
// when the certificate was obtained. The CA backdates notBefore (clock
// skew), so half of notBefore..notAfter could already be past for a short
// --cert-ttl, which would renew in a loop.
ca::WallTime RenewalTime(const WorkloadIdentity& id);

class WorkloadCertificate {
 public:
  struct Options {
    std::string xds_target;        // HOST:PORT of weftd's TLS port
    std::string server_name;       // TLS name override ("" = the host of xds_target)
    std::string trust_bundle_path; // roots that authenticate weftd
    std::string token_file;        // bearer token; re-read on every request
    std::string spiffe_id;
    int64_t validity_seconds = 0;  // 0 = the server's default
  };
  WorkloadCertificate(Options options, common::MetricsRegistry& metrics);
  ~WorkloadCertificate();

  // One CreateCertificate round trip with a fresh key; on success the new
  // identity becomes current.
  absl::Status Refresh();
  // Retries Refresh() with backoff until it succeeds or Stop() is called.
  bool RefreshUntilSuccess();
  // Renews at half life in a background thread (with backoff on failure).
  void StartRenewal();
  void Stop();

  WorkloadIdentityConstSharedPtr Current() const;
  // Roots that authenticate weftd: --trust-bundle (re-read) plus the last
  // bundle weftd sent.
  std::string ServerTrustBundle() const;
  // A call to weftd at `target` (`server_name` in its certificate):
  // authenticated by ServerTrustBundle(), with the current certificate, if
  // any, as the client's. *identity holds it until the call has started.
  GrpcCallOptions CallOptions(const std::string& target, const std::string& server_name,
                              WorkloadIdentityConstSharedPtr* identity) const;
  void OnChange(std::function<void()> callback);

 private:
  Options options_;
  common::MetricsRegistry& metrics_;
  mutable absl::Mutex mu_;
  WorkloadIdentityConstSharedPtr current_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread renewal_;
};

}  // namespace weft::proxy
