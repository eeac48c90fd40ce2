#include "ca/certificate_service.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace weft::ca {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string ReasonLabel(const absl::Status& s) {
  std::string reason = DenialReason(s);
  if (!reason.empty()) return reason;
  switch (s.code()) {
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    case absl::StatusCode::kUnavailable:
      return "authenticator_unavailable";
    default:
      return "internal";
  }
}

}  // namespace

CertificateService::CertificateService(std::vector<AuthenticatorPtr> authenticators, const CsrSigner& signer,
                                       RootRotator& rotator, IssuedCertificateLog& issued,
                                       common::MetricsRegistry& metrics, const common::Clock& clock)
    : authenticators_(std::move(authenticators)),
      signer_(signer),
      rotator_(rotator),
      issued_(issued),
      metrics_(metrics),
      clock_(clock),
      issued_total_(metrics.GetCounter("weft_ca_certificates_issued_total", "Workload certificates issued.")) {}

CallerCredentials CertificateService::CredentialsOf(const grpc::ServerContext& context) {
  CallerCredentials out;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    std::string value(it->second.data(), it->second.size());
    if (value.size() > 7 && absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      out.bearer_token = std::string(absl::StripAsciiWhitespace(value.substr(7)));
    }
  }
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth) {
    auto chain = auth->FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
    auto leaf = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    // The leaf first; on the server side OpenSSL's peer chain leaves the leaf out.
    if (!leaf.empty()) {
      out.peer_cert_pem.assign(leaf.front().data(), leaf.front().size());
      if (!chain.empty()) out.peer_cert_pem.append(chain.front().data(), chain.front().size());
    }
  }
  return out;
}

absl::StatusOr<std::pair<SpiffeId, std::string>> CertificateService::AuthenticateCaller(
    const CallerCredentials& credentials) {
  std::vector<std::string> failures;
  bool unavailable = false;
  for (const auto& a : authenticators_) {
    auto result = a->Authenticate(credentials);
    if (result.ok()) {
      if (result->has_value()) return std::make_pair(**result, std::string(a->Name()));
      continue;
    }
    unavailable |= result.status().code() == absl::StatusCode::kUnavailable;
    failures.push_back(absl::StrCat(a->Name(), ": ", result.status().message()));
  }
  if (failures.empty()) {
    return absl::UnauthenticatedError(
        "no credentials: send `authorization: Bearer <token>` or present your mesh certificate");
  }
  std::string message = absl::StrJoin(failures, "; ");
  return unavailable ? absl::UnavailableError(message) : absl::UnauthenticatedError(message);
}

absl::Status CertificateService::Deny(absl::Status status) {
  metrics_
      .GetCounter("weft_ca_requests_denied_total", "CreateCertificate calls refused, by reason.",
                  {{"reason", ReasonLabel(status)}})
      .Inc();
  return status;
}

absl::StatusOr<v1::CreateCertificateResponse> CertificateService::Issue(const CallerCredentials& credentials,
                                                                        const v1::CreateCertificateRequest& request) {
  auto caller = AuthenticateCaller(credentials);
  if (!caller.ok()) return Deny(caller.status());
  CaViewConstSharedPtr view = rotator_.Current();
  const WallTime now = clock_.WallNow();
  auto issued = signer_.SignCsr(request.csr(), caller->first, std::chrono::seconds(request.validity_seconds()),
                                *view->signing, now);
  if (!issued.ok()) {
    absl::Status denied = Deny(issued.status());
    WEFT_LOG(WARNING) << "CA: refused a certificate for " << caller->first.ToString() << " (" << caller->second
                      << "): " << denied.message();
    return denied;
  }
  rotator_.RecordIssued(*view->signing, issued->not_after);
  issued_total_.Inc();
  issued_.Add(IssuedRecord{issued->serial_hex, caller->first.ToString(), caller->second, now, issued->not_after});
  WEFT_LOG(DEBUG) << "CA: issued " << issued->serial_hex << " to " << caller->first.ToString() << " ("
                  << caller->second << ")";
  v1::CreateCertificateResponse response;
  for (auto& pem : issued->chain_pem) response.add_cert_chain(std::move(pem));
  for (const auto& pem : view->roots_pem) response.add_trust_bundle(pem);
  return response;
}

grpc::Status CertificateService::CreateCertificate(grpc::ServerContext* context,
                                                   const v1::CreateCertificateRequest* request,
                                                   v1::CreateCertificateResponse* response) {
  auto result = Issue(CredentialsOf(*context), *request);
  if (!result.ok()) {
    if (result.status().code() == absl::StatusCode::kUnauthenticated ||
        result.status().code() == absl::StatusCode::kUnavailable) {
      WEFT_LOG(WARNING) << "CA: unauthenticated call from " << context->peer() << ": " << result.status().message();
    }
    return ToGrpc(result.status());
  }
  *response = std::move(*result);
  return grpc::Status::OK;
}

void ExportExpiryGauges(const CaView& view, WallTime now, common::MetricsRegistry& metrics) {
  auto seconds = [&](X509* cert) { return std::chrono::duration<double>(NotAfter(cert) - now).count(); };
  metrics.GetGauge("weft_ca_root_expiry_seconds", "Seconds until the signing root certificate expires.")
      .Set(seconds(view.signing->root.get()));
  metrics.GetGauge("weft_ca_intermediate_expiry_seconds", "Seconds until the signing intermediate certificate expires.")
      .Set(seconds(view.signing->certificate.get()));
}

}  // namespace weft::ca
