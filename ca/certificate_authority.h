// The CA as weftd runs it: the store in --ca-dir, the RootRotator, the
// signer, the authenticators, the gRPC CertificateService, weftd's own
// serving certificate, and a background thread that advances rotation and
// renews the serving certificate. weftd's wiring makes one, registers
// service() and uses ServerCredentials() on --xds-addr; the admin API reads
// rotator() and issued().
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "ca/authenticator.h"
#include "ca/ca_store.h"
#include "ca/certificate_service.h"
#include "ca/csr_signer.h"
#include "ca/issued_certificate_log.h"
#include "ca/root_rotator.h"
#include "ca/serving_certificate.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace weft::ca {

struct CertificateAuthorityOptions {
  std::string ca_dir;                     // --ca-dir
  std::string trust_domain = "cluster.local";
  std::chrono::seconds cert_ttl = std::chrono::hours(24);  // --cert-ttl
  std::vector<std::string> server_names;  // --server-names
  std::string tokens_file;                // file mode: <config-dir>/tokens.yaml; "" for none
  RotatorOptions rotation;                // trust_domain and max_leaf_ttl are filled in from above
  std::chrono::seconds tick = std::chrono::seconds(10);
};

class CertificateAuthority {
 public:
  // Opens or creates the CA and issues the serving certificate. The CA
  // lives in `store` when given (--ca-secret), else in --ca-dir; weftd's own
  // serving certificate is always in --ca-dir. Errors are one clear line for
  // weftd to print.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> Create(CertificateAuthorityOptions options,
                                                                      const common::Clock& clock,
                                                                      common::MetricsRegistry& metrics,
                                                                      std::unique_ptr<CaStore> store = nullptr);
  ~CertificateAuthority();

  // More authenticators (Kubernetes TokenReview, once its client exists);
  // before Start().
  void AddAuthenticator(AuthenticatorPtr authenticator);

  // Starts the background thread (rotation ticks, serving certificate
  // renewal, expiry gauges).
  void Start();
  void Stop();

  CertificateService& service() { return *service_; }
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() { return serving_->Credentials(); }
  RootRotator& rotator() { return *rotator_; }
  IssuedCertificateLog& issued() { return issued_; }
  // Refreshes the expiry gauges now (the admin /metrics handler calls it).
  void ExportGauges();
  // Where the CA lives, for log lines ("directory ...", "Secret NS/NAME").
  std::string store_description() const { return store_->Describe(); }

 private:
  CertificateAuthority(CertificateAuthorityOptions options, const common::Clock& clock,
                       common::MetricsRegistry& metrics);
  void Loop();

  const CertificateAuthorityOptions options_;
  const common::Clock& clock_;
  common::MetricsRegistry& metrics_;
  std::unique_ptr<CaStore> store_;
  CsrSigner signer_;
  IssuedCertificateLog issued_;
  RootRotatorPtr rotator_;
  std::vector<AuthenticatorPtr> pending_authenticators_;
  std::unique_ptr<CertificateService> service_;
  std::unique_ptr<ServingCertificate> serving_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace weft::ca
