#include "ca/serving_certificate.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_join.h"
#include "ca/file_ca_store.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace weft::ca {

ServingCertificate::ServingCertificate(std::string dir, std::vector<std::string> names, std::chrono::seconds ttl,
                                       const CsrSigner& signer, RootRotator& rotator, IssuedCertificateLog& issued,
                                       const common::Clock& clock)
    : dir_(std::move(dir)),
      names_(std::move(names)),
      ttl_(ttl),
      signer_(signer),
      rotator_(rotator),
      issued_(issued),
      clock_(clock) {}

absl::Status ServingCertificate::Refresh() {
  absl::MutexLock lock(&mu_);
  CaViewConstSharedPtr view = rotator_.Current();
  const WallTime now = clock_.WallNow();
  if (signed_by_ == view->signing && now < renew_at_) return absl::OkStatus();
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateEcP256Key());
  ASSIGN_OR_RETURN(IssuedCertificate cert, signer_.SignServing(key.get(), names_, ttl_, *view->signing, now));
  // The key first: gRPC's watcher re-reads both and retries on a mismatch.
  RETURN_IF_ERROR(WriteFileAtomically(key_path(), PrivateKeyToPem(key.get()), 0600));
  std::string chain;
  for (const auto& pem : cert.chain_pem) chain += pem;
  RETURN_IF_ERROR(WriteFileAtomically(cert_path(), chain, 0644));
  rotator_.RecordIssued(*view->signing, cert.not_after);
  issued_.Add(IssuedRecord{cert.serial_hex, absl::StrJoin(names_, ","), "weftd", now, cert.not_after});
  signed_by_ = view->signing;
  renew_at_ = cert.not_before + (cert.not_after - cert.not_before) / 2;
  WEFT_LOG(INFO) << "CA: weftd's serving certificate for " << absl::StrJoin(names_, ", ") << " (serial "
                 << cert.serial_hex << ") written to " << cert_path();
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServingCertificate::Credentials(std::chrono::seconds refresh_interval) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      key_path(), cert_path(), static_cast<unsigned int>(refresh_interval.count()));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_identity_cert_name("");
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace weft::ca
