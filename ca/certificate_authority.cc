#include "ca/certificate_authority.h"

#include "ca/file_ca_store.h"
#include "ca/mesh_cert_authenticator.h"
#include "ca/token_file_authenticator.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace weft::ca {

CertificateAuthority::CertificateAuthority(CertificateAuthorityOptions options, const common::Clock& clock,
                                           common::MetricsRegistry& metrics)
    : options_(std::move(options)),
      clock_(clock),
      metrics_(metrics),
      signer_(SignerOptions{options_.cert_ttl, std::max(options_.cert_ttl, SignerOptions{}.max_ttl)}) {}

absl::StatusOr<std::unique_ptr<CertificateAuthority>> CertificateAuthority::Create(
    CertificateAuthorityOptions options, const common::Clock& clock, common::MetricsRegistry& metrics,
    std::unique_ptr<CaStore> store) {
  if (options.cert_ttl.count() <= 0) return absl::InvalidArgumentError("--cert-ttl must be positive");
  if (options.server_names.empty()) return absl::InvalidArgumentError("--server-names must name at least one host");
  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority(std::move(options), clock, metrics));
  const auto& o = ca->options_;
  // The directory holds the CA itself, or only weftd's serving certificate.
  ASSIGN_OR_RETURN(std::unique_ptr<FileCaStore> dir, FileCaStore::Open(o.ca_dir));
  if (store != nullptr) {
    ca->store_ = std::move(store);
  } else {
    ca->store_ = std::move(dir);
  }
  RotatorOptions rotation = o.rotation;
  rotation.trust_domain = o.trust_domain;
  rotation.max_leaf_ttl = ca->signer_.options().max_ttl;
  rotation.distribution_time = std::max(rotation.distribution_time, o.cert_ttl);
  ASSIGN_OR_RETURN(ca->rotator_, RootRotator::Open(*ca->store_, clock, rotation));
  ca->serving_ = std::make_unique<ServingCertificate>(o.ca_dir, o.server_names, o.cert_ttl, ca->signer_,
                                                      *ca->rotator_, ca->issued_, clock);
  RETURN_IF_ERROR(ca->serving_->Refresh());
  if (!o.tokens_file.empty()) {
    ca->pending_authenticators_.push_back(
        std::make_unique<TokenFileAuthenticator>(o.tokens_file, o.trust_domain, clock));
  }
  ca->ExportGauges();
  return ca;
}

CertificateAuthority::~CertificateAuthority() { Stop(); }

void CertificateAuthority::AddAuthenticator(AuthenticatorPtr authenticator) {
  pending_authenticators_.push_back(std::move(authenticator));
}

void CertificateAuthority::Start() {
  if (service_) return;
  // Tokens first, then renewal by mesh certificate.
  pending_authenticators_.push_back(
      std::make_unique<MeshCertAuthenticator>(*rotator_, options_.trust_domain, clock_));
  service_ = std::make_unique<CertificateService>(std::move(pending_authenticators_), signer_, *rotator_, issued_,
                                                  metrics_, clock_);
  rotator_->AddChangeCallback([this](const CaView&) {
    if (absl::Status s = serving_->Refresh(); !s.ok()) {
      WEFT_LOG(ERROR) << "CA: cannot renew weftd's serving certificate: " << s;
    }
    ExportGauges();
  });
  thread_ = std::thread([this] { Loop(); });
}

void CertificateAuthority::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void CertificateAuthority::ExportGauges() { ExportExpiryGauges(*rotator_->Current(), clock_.WallNow(), metrics_); }

void CertificateAuthority::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(absl::FromChrono(options_.tick))) {
    rotator_->Tick().IgnoreError();  // logged inside; retried next tick
    if (absl::Status s = serving_->Refresh(); !s.ok()) {
      WEFT_LOG(ERROR) << "CA: cannot renew weftd's serving certificate: " << s;
    }
    ExportGauges();
  }
}

}  // namespace weft::ca
