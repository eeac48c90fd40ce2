// weftd's own TLS identity on --xds-addr: a certificate from its own CA for
// the --server-names DNS names and IPs, kept fresh (re-issued at half life
// and whenever the signing root changes) in two files in the CA directory
// that gRPC's file-watching certificate provider re-reads. The server asks
// for, but does not require or verify, a client certificate: the CA's
// MeshCertAuthenticator checks it (renewal).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ca/csr_signer.h"
#include "ca/issued_certificate_log.h"
#include "ca/root_rotator.h"
#include "common/clock.h"

namespace weft::ca {

class ServingCertificate {
 public:
  ServingCertificate(std::string dir, std::vector<std::string> names, std::chrono::seconds ttl,
                     const CsrSigner& signer, RootRotator& rotator, IssuedCertificateLog& issued,
                     const common::Clock& clock);

  // Issues and writes a new certificate when there is none yet, half its
  // life has passed, or the CA signs with another intermediate now.
  absl::Status Refresh();

  // TLS server credentials over the two files (call after a first Refresh()).
  // `refresh_interval` is how often gRPC re-reads them.
  std::shared_ptr<grpc::ServerCredentials> Credentials(std::chrono::seconds refresh_interval = std::chrono::seconds(10));

  std::string cert_path() const { return dir_ + "/server-cert.pem"; }
  std::string key_path() const { return dir_ + "/server-key.pem"; }

 private:
  const std::string dir_;
  const std::vector<std::string> names_;
  const std::chrono::seconds ttl_;
  const CsrSigner& signer_;
  RootRotator& rotator_;
  IssuedCertificateLog& issued_;
  const common::Clock& clock_;

  absl::Mutex mu_;
  SigningAuthorityConstSharedPtr signed_by_ ABSL_GUARDED_BY(mu_);
  WallTime renew_at_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace weft::ca
