// The CA in Kubernetes mode, end to end: weftd --registry=kubernetes against
// the fake API server checks a workload's bearer token with TokenReview
// (audience weft-ca) before it signs; expired tokens, tokens for another
// audience, unknown tokens and requests for another identity are refused.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ca/csr_builder.h"
#include "ca/x509.h"
#include "tests/e2e/harness/process.h"
#include "weft/ca/v1/ca.grpc.pb.h"

namespace weft::e2e {
namespace {

TEST_CASE("Kubernetes mode: the CA signs only for tokens TokenReview accepts", "[e2e][ca][kube]") {
  std::string dir = MakeTempDir("weft-e2e-kube-ca-");
  int api_port = 0;
  Subprocess api({BinaryPath("fake-kube-apiserver"), "--port=0", "--port-file=" + dir + "/api.port",
                  "--kubeconfig=" + dir + "/kubeconfig", "--token=weftd-token",
                  "--review-token=orders-token:shop:orders:weft-ca",
                  "--review-token=other-audience:shop:orders:vault",
                  "--review-token=old-token:shop:orders:weft-ca:expired"},
                 {}, dir + "/apiserver.log");
  REQUIRE(api.Start().ok());
  REQUIRE(WaitFor([&] { return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir + "/api.port")), &api_port); },
                  absl::Seconds(10)));
  int tls_port = PickFreePort();
  int admin_port = PickFreePort();
  Subprocess weftd({BinaryPath("weftd"), "--registry=kubernetes", "--kubeconfig=" + dir + "/kubeconfig",
                    "--ca-dir=" + dir + "/ca", absl::StrCat("--xds-addr=127.0.0.1:", tls_port),
                    absl::StrCat("--admin-addr=127.0.0.1:", admin_port), "--server-names=localhost,127.0.0.1"},
                   {}, dir + "/weftd.log");
  REQUIRE(weftd.Start().ok());
  REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; }, absl::Seconds(15)));
  REQUIRE(WaitForTcpPort("127.0.0.1", tls_port, absl::Seconds(10)));

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(dir + "/ca/root-cert.pem");
  auto stub = weft::ca::v1::CertificateService::NewStub(
      grpc::CreateChannel(absl::StrCat("localhost:", tls_port), grpc::SslCredentials(ssl)));
  ca::EvpPkeyPtr key = ca::GenerateEcP256Key().value();
  auto call = [&](const std::string& token, const std::string& identity,
                  weft::ca::v1::CreateCertificateResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.AddMetadata("authorization", "Bearer " + token);
    weft::ca::v1::CreateCertificateRequest req;
    req.set_csr(ca::MakeCsrPem(key.get(), {{identity}, {}, false, ""}).value());
    return stub->CreateCertificate(&ctx, req, out);
  };
  const std::string orders = "spiffe://cluster.local/ns/shop/sa/orders";
  weft::ca::v1::CreateCertificateResponse issued;
  grpc::Status ok = call("orders-token", orders, &issued);
  INFO(ok.error_message());
  REQUIRE(ok.ok());
  CHECK(ca::UriSans(ca::ParseCertificatePem(issued.cert_chain(0)).value().get()) == std::vector<std::string>{orders});

  weft::ca::v1::CreateCertificateResponse refused;
  CHECK(call("other-audience", orders, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(call("old-token", orders, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(call("never-issued", orders, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(call("orders-token", "spiffe://cluster.local/ns/shop/sa/payments", &refused).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  weftd.Stop();
  api.Stop();
}

}  // namespace
}  // namespace weft::e2e
