// The CA in Kubernetes mode, end to end: weftd --registry=kubernetes against
// the fake API server checks a workload's bearer token with TokenReview
// (audience weft-ca) before it signs; expired tokens, tokens for another
// audience, unknown tokens and requests for another identity are refused.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ca/csr_builder.h"
#include "ca/x509.h"
#include "tests/e2e/harness/process.h"
#include "weft/ca/v1/ca.grpc.pb.h"

namespace weft::e2e {
namespace {

// The fake API server with weftd's kubeconfig in `dir` and these extra flags.
SubprocessPtr StartFakeApi(const std::string& dir, std::vector<std::string> flags, int* port) {
  std::vector<std::string> argv = {BinaryPath("fake-kube-apiserver"), "--port=0",
                                   "--port-file=" + dir + "/api.port", "--kubeconfig=" + dir + "/kubeconfig",
                                   "--token=weftd-token"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto api = std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{},
                                          dir + "/apiserver.log");
  REQUIRE(api->Start().ok());
  REQUIRE(
      WaitFor([&] { return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir + "/api.port")), port); },
              absl::Seconds(10)));
  return api;
}

TEST_CASE("Kubernetes mode: the CA signs only for tokens TokenReview accepts", "[e2e][ca][kube]") {
  std::string dir = MakeTempDir("weft-e2e-kube-ca-");
  int api_port = 0;
  SubprocessPtr api = StartFakeApi(
      dir,
      {"--review-token=orders-token:shop:orders:weft-ca", "--review-token=other-audience:shop:orders:vault",
       "--review-token=old-token:shop:orders:weft-ca:expired"},
      &api_port);
  int tls_port = PickFreePort();
  int admin_port = PickFreePort();
  Subprocess weftd(
      {BinaryPath("weftd"), "--registry=kubernetes", "--kubeconfig=" + dir + "/kubeconfig",
       "--ca-dir=" + dir + "/ca", absl::StrCat("--xds-addr=127.0.0.1:", tls_port),
       absl::StrCat("--admin-addr=127.0.0.1:", admin_port), "--server-names=localhost,127.0.0.1"},
      {}, dir + "/weftd.log");
  REQUIRE(weftd.Start().ok());
  REQUIRE(
      WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; }, absl::Seconds(15)));
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
  CHECK(ca::UriSans(ca::ParseCertificatePem(issued.cert_chain(0)).value().get()) ==
        std::vector<std::string>{orders});

  weft::ca::v1::CreateCertificateResponse refused;
  CHECK(call("other-audience", orders, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(call("old-token", orders, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(call("never-issued", orders, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(call("orders-token", "spiffe://cluster.local/ns/shop/sa/payments", &refused).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  weftd.Stop();
  api->Stop();
}

// One data entry of a Secret (base64-decoded) or ConfigMap in the fake API
// server; "" when absent.
std::string DataEntry(int api_port, const std::string& path, const std::string& key) {
  httplib::Client client("127.0.0.1", api_port);
  httplib::Result r = client.Get(path.c_str(), {{"Authorization", "Bearer weftd-token"}});
  if (!r || r->status != 200) return "";
  nlohmann::json secret = nlohmann::json::parse(r->body, nullptr, false);
  if (!secret.is_object() || !secret["data"].is_object() || !secret["data"].contains(key)) return "";
  if (secret["kind"] == "ConfigMap") return secret["data"][key].get<std::string>();
  std::string decoded;
  absl::Base64Unescape(secret["data"][key].get<std::string>(), &decoded);
  return decoded;
}

TEST_CASE(
    "Kubernetes mode: --ca-secret keeps the CA in a Secret across restarts; ConfigMaps weft-ca-root-cert "
    "carry "
    "the bundle",
    "[e2e][ca][kube]") {
  std::string dir = MakeTempDir("weft-e2e-kube-ca-secret-");
  int api_port = 0;
  SubprocessPtr api = StartFakeApi(dir, {"--review-token=orders-token:shop:orders:weft-ca"}, &api_port);
  const std::string secret_path = "/api/v1/namespaces/kube-system/secrets/weft-ca";
  const std::string orders = "spiffe://cluster.local/ns/shop/sa/orders";
  ca::EvpPkeyPtr key = ca::GenerateEcP256Key().value();

  // Each run gets a fresh --ca-dir: only weftd's serving certificate lives
  // there, so everything that survives must have come from the Secret.
  auto run = [&](const std::string& name, weft::ca::v1::CreateCertificateResponse* out) {
    int tls_port = PickFreePort();
    int admin_port = PickFreePort();
    Subprocess weftd(
        {BinaryPath("weftd"), "--registry=kubernetes", "--kubeconfig=" + dir + "/kubeconfig",
         "--ca-secret=kube-system/weft-ca", "--ca-dir=" + dir + "/" + name,
         absl::StrCat("--xds-addr=127.0.0.1:", tls_port), absl::StrCat("--admin-addr=127.0.0.1:", admin_port),
         "--server-names=localhost,127.0.0.1"},
        {}, dir + "/weftd-" + name + ".log");
    REQUIRE(weftd.Start().ok());
    REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; },
                    absl::Seconds(15)));
    REQUIRE(WaitForTcpPort("127.0.0.1", tls_port, absl::Seconds(10)));
    // The trust bundle in every namespace (no --namespace-selector: all of them).
    const std::string bundle = DataEntry(api_port, secret_path, "root-cert.pem");
    for (const char* ns : {"default", "kube-system"}) {
      INFO(ns);
      CHECK(WaitFor(
          [&] {
            return DataEntry(api_port,
                             absl::StrCat("/api/v1/namespaces/", ns, "/configmaps/weft-ca-root-cert"),
                             "root-cert.pem") == bundle;
          },
          absl::Seconds(15)));
    }
    CHECK_FALSE(std::ifstream(dir + "/" + name + "/root-key.pem").good());
    CHECK_FALSE(std::ifstream(dir + "/" + name + "/ca-key.pem").good());
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = DataEntry(api_port, secret_path, "root-cert.pem");
    REQUIRE_FALSE(ssl.pem_root_certs.empty());
    auto stub = weft::ca::v1::CertificateService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", tls_port), grpc::SslCredentials(ssl)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.AddMetadata("authorization", "Bearer orders-token");
    weft::ca::v1::CreateCertificateRequest req;
    req.set_csr(ca::MakeCsrPem(key.get(), {{orders}, {}, false, ""}).value());
    grpc::Status s = stub->CreateCertificate(&ctx, req, out);
    INFO(s.error_message());
    REQUIRE(s.ok());
    weftd.Stop();
  };

  weft::ca::v1::CreateCertificateResponse before, after;
  run("first", &before);
  const std::string root = DataEntry(api_port, secret_path, "root-cert.pem");
  REQUIRE_FALSE(DataEntry(api_port, secret_path, "ca-key.pem").empty());
  run("second", &after);
  CHECK(DataEntry(api_port, secret_path, "root-cert.pem") == root);

  // The certificate issued before the restart verifies against the bundle after it.
  std::vector<ca::X509Ptr> roots;
  for (const auto& pem : after.trust_bundle()) roots.push_back(ca::ParseCertificatePem(pem).value());
  auto store = ca::MakeTrustStore(roots).value();
  std::vector<ca::X509Ptr> intermediates;
  for (int i = 1; i < before.cert_chain_size(); ++i) {
    intermediates.push_back(ca::ParseCertificatePem(before.cert_chain(i)).value());
  }
  auto leaf = ca::ParseCertificatePem(before.cert_chain(0)).value();
  absl::Status verified =
      ca::VerifyCertificate(store.get(), leaf.get(), intermediates, std::chrono::system_clock::now());
  INFO(verified.ToString());
  CHECK(verified.ok());
  api->Stop();
}

}  // namespace
}  // namespace weft::e2e
