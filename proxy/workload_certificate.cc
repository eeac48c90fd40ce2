#include "proxy/workload_certificate.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ca/csr_builder.h"
#include "common/logging.h"
#include "proxy/grpc_call.h"
#include "weft/ca/v1/ca.pb.h"

namespace weft::proxy {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

WorkloadCertificate::WorkloadCertificate(Options options, common::MetricsRegistry& metrics)
    : options_(std::move(options)), metrics_(metrics) {}

WorkloadCertificate::~WorkloadCertificate() { Stop(); }

std::string WorkloadCertificate::ServerTrustBundle() const {
  std::string bundle;
  if (auto file = ReadWholeFile(options_.trust_bundle_path); file.ok()) bundle = *file;
  absl::MutexLock lock(&mu_);
  if (current_ && !current_->bundle_pem.empty() && bundle.find(current_->bundle_pem) == std::string::npos) {
    if (!bundle.empty() && bundle.back() != '\n') bundle += '\n';
    bundle += current_->bundle_pem;
  }
  return bundle;
}

GrpcCallOptions WorkloadCertificate::CallOptions(const std::string& target, const std::string& server_name,
                                                 WorkloadIdentityConstSharedPtr* identity) const {
  GrpcCallOptions options;
  options.target = target;
  options.server_name = server_name;
  options.roots_pem = ServerTrustBundle();
  *identity = Current();
  if (*identity != nullptr) {
    options.client_key = (*identity)->key.get();
    options.client_chain = &(*identity)->chain;
  }
  return options;
}

absl::Status WorkloadCertificate::Refresh() {
  auto token = ReadWholeFile(options_.token_file);
  if (!token.ok()) return absl::FailedPreconditionError("--token-file: " + std::string(token.status().message()));
  std::string bearer(absl::StripAsciiWhitespace(*token));
  // Renewal: the current certificate is presented too.
  WorkloadIdentityConstSharedPtr cur;
  GrpcCallOptions call = CallOptions(options_.xds_target, options_.server_name, &cur);
  if (call.roots_pem.empty()) {
    return absl::FailedPreconditionError("--trust-bundle: cannot read " + options_.trust_bundle_path);
  }

  auto key = ca::GenerateEcP256Key();
  if (!key.ok()) return key.status();
  auto csr = ca::MakeCsrPem(key->get(), {{options_.spiffe_id}, {}, false, ""});
  if (!csr.ok()) return csr.status();

  call.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  if (!bearer.empty()) call.metadata.emplace_back("authorization", "Bearer " + bearer);
  weft::ca::v1::CreateCertificateRequest request;
  request.set_csr(*csr);
  request.set_validity_seconds(options_.validity_seconds);
  weft::ca::v1::CreateCertificateResponse response;
  absl::Status status =
      GrpcUnaryCall(call, "/weft.ca.v1.CertificateService/CreateCertificate", request, &response);
  if (!status.ok()) {
    metrics_.GetCounter("weft_proxy_certificate_requests_total", "CreateCertificate calls by result",
                        {{"result", "error"}}).Inc();
    return absl::Status(status.code(), absl::StrCat("CreateCertificate: ", status.message()));
  }
  auto id = std::make_shared<WorkloadIdentity>();
  id->spiffe_id = options_.spiffe_id;
  for (const auto& pem : response.cert_chain()) {
    auto cert = ca::ParseCertificatePem(pem);
    if (!cert.ok()) return absl::InternalError("CreateCertificate returned an unparsable chain: " + std::string(cert.status().message()));
    id->chain.push_back(std::move(*cert));
    id->chain_pem += pem;
    if (!pem.empty() && pem.back() != '\n') id->chain_pem += '\n';
  }
  if (id->chain.empty()) return absl::InternalError("CreateCertificate returned no certificate");
  if (!ca::KeyMatchesCertificate(key->get(), id->chain[0].get())) {
    return absl::InternalError("CreateCertificate returned a certificate for another key");
  }
  auto sans = ca::UriSans(id->chain[0].get());
  if (sans != std::vector<std::string>{options_.spiffe_id}) {
    return absl::InternalError("CreateCertificate returned a certificate for another identity");
  }
  for (const auto& pem : response.trust_bundle()) {
    id->bundle_pem += pem;
    if (!pem.empty() && pem.back() != '\n') id->bundle_pem += '\n';
  }
  if (id->bundle_pem.empty()) id->bundle_pem = call.roots_pem;
  id->not_before = ca::NotBefore(id->chain[0].get());
  id->not_after = ca::NotAfter(id->chain[0].get());
  id->obtained = std::chrono::system_clock::now();
  id->key = std::move(*key);
  std::vector<std::function<void()>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    id->generation = current_ ? current_->generation + 1 : 1;
    current_ = id;
    callbacks = callbacks_;
  }
  metrics_.GetCounter("weft_proxy_certificate_requests_total", "CreateCertificate calls by result",
                      {{"result", "ok"}}).Inc();
  metrics_.GetGauge("weft_proxy_certificate_expiry_timestamp_seconds", "not-after of the workload certificate")
      .Set(std::chrono::duration<double>(id->not_after.time_since_epoch()).count());
  WEFT_LOG(INFO) << "workload certificate for " << id->spiffe_id << " (generation " << id->generation
                 << "), valid for "
                 << std::chrono::duration_cast<std::chrono::minutes>(id->not_after - std::chrono::system_clock::now()).count()
                 << " min";
  for (auto& cb : callbacks) cb();
  return absl::OkStatus();
}

bool WorkloadCertificate::RefreshUntilSuccess() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = std::chrono::milliseconds(500);
  for (;;) {
    absl::Status s = Refresh();
    if (s.ok()) return true;
    WEFT_LOG(WARNING) << "workload certificate: " << s.message() << "; retrying in " << backoff.count() << " ms";
    auto wait = backoff + std::chrono::milliseconds(rng() % (backoff.count() / 2 + 1));
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(wait))) return false;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
  }
}

ca::WallTime RenewalTime(const WorkloadIdentity& id) {
  const ca::WallTime start = std::max(id.not_before, id.obtained);
  if (id.not_after <= start) return start;
  return start + (id.not_after - start) / 2;
}

void WorkloadCertificate::StartRenewal() {
  renewal_ = std::thread([this] {
    for (;;) {
      WorkloadIdentityConstSharedPtr cur = Current();
      auto now = std::chrono::system_clock::now();
      auto at = cur ? RenewalTime(*cur) : now;
      {
        absl::MutexLock lock(&mu_);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        if (at > now && mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(at - now))) return;
        if (stopping_) return;
      }
      if (!RefreshUntilSuccess()) return;
    }
  });
}

void WorkloadCertificate::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (renewal_.joinable()) renewal_.join();
}

WorkloadIdentityConstSharedPtr WorkloadCertificate::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void WorkloadCertificate::OnChange(std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  callbacks_.push_back(std::move(callback));
}

}  // namespace weft::proxy
