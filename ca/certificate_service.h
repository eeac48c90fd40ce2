// weft.ca.v1.CertificateService (DESIGN.md §5) on weftd's TLS xDS port: joins
// the authenticators (who is calling) with the CsrSigner (what to sign) and
// the RootRotator (with which authority, which bundle to hand out). Counts
// issued and denied requests (weft_ca_certificates_issued_total,
// weft_ca_requests_denied_total{reason}) and records issued certificates for
// the admin API.
#pragma once

#include <vector>

#include "ca/authenticator.h"
#include "ca/csr_signer.h"
#include "ca/issued_certificate_log.h"
#include "ca/root_rotator.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "weft/ca/v1/ca.grpc.pb.h"

namespace weft::ca {

class CertificateService final : public v1::CertificateService::Service {
 public:
  // Authenticators are asked in order; the first that proves an identity wins.
  CertificateService(std::vector<AuthenticatorPtr> authenticators, const CsrSigner& signer, RootRotator& rotator,
                     IssuedCertificateLog& issued, common::MetricsRegistry& metrics, const common::Clock& clock);

  grpc::Status CreateCertificate(grpc::ServerContext* context, const v1::CreateCertificateRequest* request,
                                 v1::CreateCertificateResponse* response) override;

  // The whole call without gRPC: authenticate, sign, record.
  absl::StatusOr<v1::CreateCertificateResponse> Issue(const CallerCredentials& credentials,
                                                      const v1::CreateCertificateRequest& request);

  // The bearer token and TLS client certificate of a call.
  static CallerCredentials CredentialsOf(const grpc::ServerContext& context);

 private:
  absl::StatusOr<std::pair<SpiffeId, std::string>> AuthenticateCaller(const CallerCredentials& credentials);
  absl::Status Deny(absl::Status status);

  const std::vector<AuthenticatorPtr> authenticators_;
  const CsrSigner& signer_;
  RootRotator& rotator_;
  IssuedCertificateLog& issued_;
  common::MetricsRegistry& metrics_;
  const common::Clock& clock_;
  common::Counter& issued_total_;
};

// Sets weft_ca_root_expiry_seconds and weft_ca_intermediate_expiry_seconds
// (seconds from `now` until the signing root / intermediate expire).
void ExportExpiryGauges(const CaView& view, WallTime now, common::MetricsRegistry& metrics);

}  // namespace weft::ca
