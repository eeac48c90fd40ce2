// ca_sign: how fast the built-in CA issues certificates (issue 5).
//   1. in-process, one thread: CSR parse + verify + sign + PEM encode
//      (CsrSigner::SignCsr), against OpenSSL's raw ECDSA P-256 signing rate
//      (EVP_DigestSign in a loop, what `openssl speed ecdsap256` measures)
//      in the same run, interleaved in 50 ms slices, and their ratio
//      (target >= 0.25);
//   2. through the gRPC service over TLS with bearer tokens, 64 concurrent
//      callers on an in-process server on 127.0.0.1:0.
// Prints its figures; never a timed test. Usage: ca_sign [seconds per phase, default 3]
#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ca/authority_factory.h"
#include "ca/certificate_service.h"
#include "ca/csr_builder.h"
#include "ca/file_ca_store.h"
#include "ca/serving_certificate.h"
#include "ca/token_file_authenticator.h"
#include "common/logging.h"

namespace weft::ca {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::vector<std::string> MakeCsrs(int n, const std::string& uri) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    EvpPkeyPtr key = GenerateEcP256Key().value();
    out.push_back(MakeCsrPem(key.get(), CsrFields{{uri}, {}, false, ""}).value());
  }
  return out;
}

struct IssueAndSign {
  double issue_rate;
  double raw_sign_rate;
};

// Issuance and raw signing measured in alternating 50 ms slices, so that the
// load of the (shared) machine weighs on both alike and their ratio holds
// even when the absolute rates move.
IssueAndSign MeasureIssueAndSign(double seconds, const std::vector<std::string>& csrs) {
  auto authority =
      CreateAuthority("cluster.local", std::chrono::hours(24 * 3650), std::chrono::system_clock::now())
          .value();
  CsrSigner signer;
  const SpiffeId id{"cluster.local", "shop", "orders"};
  EvpPkeyPtr key = GenerateEcP256Key().value();
  unsigned char msg[32] = {1, 2, 3};
  unsigned char sig[128];
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t bytes = 0;
  int64_t issued = 0, signed_raw = 0;
  double issue_time = 0, sign_time = 0;
  constexpr double kSlice = 0.05;
  while (issue_time < seconds || sign_time < seconds) {
    auto start = Clock::now();
    do {
      for (int i = 0; i < 16; ++i, ++issued) {
        auto cert = signer.SignCsr(csrs[static_cast<size_t>(issued) % csrs.size()], id,
                                   std::chrono::seconds(0), *authority, std::chrono::system_clock::now());
        if (!cert.ok()) {
          std::fprintf(stderr, "signing failed: %s\n", cert.status().ToString().c_str());
          std::exit(1);
        }
        bytes += cert->chain_pem[0].size();
      }
    } while (Seconds(start) < kSlice);
    issue_time += Seconds(start);
    start = Clock::now();
    do {
      for (int i = 0; i < 16; ++i, ++signed_raw) {
        size_t len = sizeof(sig);
        EVP_MD_CTX_reset(ctx);
        if (EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) != 1 ||
            EVP_DigestSign(ctx, sig, &len, msg, sizeof(msg)) != 1) {
          std::fprintf(stderr, "EVP_DigestSign failed\n");
          std::exit(1);
        }
      }
    } while (Seconds(start) < kSlice);
    sign_time += Seconds(start);
  }
  EVP_MD_CTX_free(ctx);
  if (bytes == 0) std::exit(1);
  return {static_cast<double>(issued) / issue_time, static_cast<double>(signed_raw) / sign_time};
}

// The other half of an issuance: verifying one ECDSA P-256 signature.
double RawVerifyRate(double seconds) {
  EvpPkeyPtr key = GenerateEcP256Key().value();
  unsigned char msg[32] = {1, 2, 3};
  unsigned char sig[128];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr);
  EVP_DigestSign(ctx, sig, &sig_len, msg, sizeof(msg));
  int64_t n = 0;
  auto start = Clock::now();
  while (n % 256 != 0 || Seconds(start) < seconds) {
    EVP_MD_CTX_reset(ctx);
    if (EVP_DigestVerifyInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) != 1 ||
        EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)) != 1) {
      std::fprintf(stderr, "EVP_DigestVerify failed\n");
      std::exit(1);
    }
    ++n;
  }
  EVP_MD_CTX_free(ctx);
  return static_cast<double>(n) / Seconds(start);
}

double GrpcRate(double seconds, int callers, const std::vector<std::string>& csrs) {
  char tmpl[] = "/tmp/weft-ca-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::exit(1);
  std::string dir = tmpl;
  common::RealClock& clock = common::RealClock::Get();
  common::MetricsRegistry metrics;
  IssuedCertificateLog issued;
  CsrSigner signer;
  auto store = FileCaStore::Open(dir + "/ca").value();
  auto rotator = RootRotator::Open(*store, clock, RotatorOptions{}).value();
  if (!WriteFileAtomically(dir + "/tokens.yaml",
                           "tokens:\n- {token: bench, namespace: shop, serviceAccount: orders}\n", 0600)
           .ok()) {
    std::exit(1);
  }
  std::vector<AuthenticatorPtr> auths;
  auths.push_back(std::make_unique<TokenFileAuthenticator>(dir + "/tokens.yaml", "cluster.local", clock));
  CertificateService service(std::move(auths), signer, *rotator, issued, metrics, clock);
  ServingCertificate serving(dir + "/ca", {"localhost"}, std::chrono::hours(24), signer, *rotator, issued,
                             clock);
  if (!serving.Refresh().ok()) std::exit(1);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", serving.Credentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) std::exit(1);

  grpc::SslCredentialsOptions ssl;
  for (const auto& pem : rotator->TrustBundlePem()) ssl.pem_root_certs += pem;
  // A few connections shared by all callers, as proxies on a few nodes would.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 8; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", i);  // distinct channels, not one shared subchannel
    channels.push_back(
        grpc::CreateCustomChannel("localhost:" + std::to_string(port), grpc::SslCredentials(ssl), args));
  }
  std::atomic<bool> go{false}, stop{false};
  std::atomic<int64_t> done{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      auto stub = v1::CertificateService::NewStub(channels[static_cast<size_t>(t) % channels.size()]);
      while (!go.load()) std::this_thread::yield();
      for (size_t i = static_cast<size_t>(t); !stop.load(); i += static_cast<size_t>(callers)) {
        grpc::ClientContext ctx;
        ctx.AddMetadata("authorization", "Bearer bench");
        v1::CreateCertificateRequest request;
        request.set_csr(csrs[i % csrs.size()]);
        v1::CreateCertificateResponse response;
        grpc::Status s = stub->CreateCertificate(&ctx, request, &response);
        (s.ok() && response.cert_chain_size() == 2 ? done : failed).fetch_add(1);
      }
    });
  }
  // Warm up the connections, then measure.
  go = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int64_t before = done.load();
  auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  double rate = static_cast<double>(done.load() - before) / Seconds(start);
  stop = true;
  for (auto& t : threads) t.join();
  server->Shutdown();
  if (failed.load() > 0) std::fprintf(stderr, "%lld calls failed\n", static_cast<long long>(failed.load()));
  return rate;
}

}  // namespace
}  // namespace weft::ca

int main(int argc, char** argv) {
  weft::common::SetMinLogLevel(weft::common::LogLevel::kWarning);
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  if (seconds <= 0) seconds = 3.0;
  unsigned cores = std::thread::hardware_concurrency();
  std::printf("ca_sign: %.1f s per phase, %u hardware threads, %s\n", seconds, cores,
              OpenSSL_version(OPENSSL_VERSION));
  auto csrs = weft::ca::MakeCsrs(256, "spiffe://cluster.local/ns/shop/sa/orders");

  auto [issue, raw] = weft::ca::MeasureIssueAndSign(seconds, csrs);
  std::printf("raw ECDSA P-256 sign (EVP_DigestSign, SHA-256), 1 thread: %10.0f signatures/s\n", raw);
  std::printf("issue (CSR parse+verify, sign, PEM), 1 thread, in-process: %10.0f certificates/s\n", issue);
  std::printf("ratio issue/raw: %.3f (target >= 0.25)\n", issue / raw);
  double verify = weft::ca::RawVerifyRate(seconds);
  std::printf("raw ECDSA P-256 verify (EVP_DigestVerify), 1 thread: %10.0f verifications/s\n", verify);
  std::printf("bound for one sign + one verify: %.0f/s, ratio %.3f of the raw signing rate\n",
              1 / (1 / raw + 1 / verify), (1 / (1 / raw + 1 / verify)) / raw);
  double grpc = weft::ca::GrpcRate(seconds, 64, csrs);
  std::printf("gRPC CreateCertificate over TLS, 64 concurrent callers: %10.0f certificates/s\n", grpc);
  return 0;
}
