// The gRPC service end to end in-process, over TLS with weftd's own serving
// certificate: a bearer token gets a chain and the bundle; no credentials,
// an unknown token or another identity are refused with the right code and
// counted; a mesh certificate presented as the TLS client certificate renews
// without a token.
#include "ca/certificate_service.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "ca/file_ca_store.h"
#include "ca/mesh_cert_authenticator.h"
#include "ca/serving_certificate.h"
#include "ca/token_file_authenticator.h"
#include "tests/ca/test_ca.h"

namespace weft::ca {
namespace {

using namespace testing;

std::string TempDir() {
  char tmpl[] = "/tmp/weft-ca-svc-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

struct Server {
  std::string dir = TempDir();
  common::RealClock& clock = common::RealClock::Get();
  common::MetricsRegistry metrics;
  IssuedCertificateLog issued;
  CsrSigner signer;
  std::unique_ptr<FileCaStore> store = FileCaStore::Open(dir + "/ca").value();
  RootRotatorPtr rotator = RootRotator::Open(*store, clock, RotatorOptions{}).value();
  std::unique_ptr<CertificateService> service;
  std::unique_ptr<ServingCertificate> serving;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  Server() {
    REQUIRE(WriteFileAtomically(dir + "/tokens.yaml",
                                "tokens:\n- {token: t-orders, namespace: shop, serviceAccount: orders}\n", 0600)
                .ok());
    std::vector<AuthenticatorPtr> auths;
    auths.push_back(std::make_unique<TokenFileAuthenticator>(dir + "/tokens.yaml", "cluster.local", clock));
    auths.push_back(std::make_unique<MeshCertAuthenticator>(*rotator, "cluster.local", clock));
    service = std::make_unique<CertificateService>(std::move(auths), signer, *rotator, issued, metrics, clock);
    serving = std::make_unique<ServingCertificate>(dir + "/ca", std::vector<std::string>{"localhost", "127.0.0.1"},
                                                   std::chrono::hours(24), signer, *rotator, issued, clock);
    REQUIRE(serving->Refresh().ok());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", serving->Credentials(), &port);
    builder.RegisterService(service.get());
    server = builder.BuildAndStart();
    REQUIRE(server);
    REQUIRE(port > 0);
  }
  ~Server() { server->Shutdown(); }

  std::unique_ptr<v1::CertificateService::Stub> Client(const std::string& key_pem = "",
                                                       const std::string& cert_pem = "") {
    grpc::SslCredentialsOptions ssl;
    for (const auto& pem : rotator->TrustBundlePem()) ssl.pem_root_certs += pem;
    ssl.pem_private_key = key_pem;
    ssl.pem_cert_chain = cert_pem;
    auto channel = grpc::CreateChannel("localhost:" + std::to_string(port), grpc::SslCredentials(ssl));
    return v1::CertificateService::NewStub(channel);
  }

  double Denied(const std::string& reason) {
    return metrics.GetCounter("weft_ca_requests_denied_total", "", {{"reason", reason}}).Value();
  }
};

grpc::Status Call(v1::CertificateService::Stub& stub, const std::string& token, const std::string& csr,
                  v1::CreateCertificateResponse* response) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::CreateCertificateRequest request;
  request.set_csr(csr);
  return stub.CreateCertificate(&ctx, request, response);
}

TEST_CASE("CreateCertificate over TLS: token callers get their own identity only", "[ca][service]") {
  Server s;
  auto stub = s.Client();
  const std::string uri = "spiffe://cluster.local/ns/shop/sa/orders";

  v1::CreateCertificateResponse response;
  grpc::Status st = Call(*stub, "t-orders", CsrFor(uri), &response);
  INFO(st.error_message());
  REQUIRE(st.ok());
  REQUIRE(response.cert_chain_size() == 2);
  REQUIRE(response.trust_bundle_size() == 1);
  std::vector<std::string> chain(response.cert_chain().begin(), response.cert_chain().end());
  std::vector<X509Ptr> bundle = ParseCertificatesPem(response.trust_bundle(0)).value();
  CHECK(VerifyChainPem(chain, bundle, std::chrono::system_clock::now()).ok());
  CHECK(UriSans(ParseCertificatePem(chain[0]).value().get()) == std::vector<std::string>{uri});
  CHECK(s.metrics.GetCounter("weft_ca_certificates_issued_total", "").Value() == 1);
  auto recent = s.issued.Recent(10);
  REQUIRE(recent.size() == 2);  // the workload's, then weftd's own serving certificate
  CHECK(recent[0].identity == uri);
  CHECK(recent[0].authenticator == "token-file");

  SECTION("no credentials") {
    st = Call(*stub, "", CsrFor(uri), &response);
    CHECK(st.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(s.Denied("unauthenticated") == 1);
  }
  SECTION("an unknown token") {
    st = Call(*stub, "t-guess", CsrFor(uri), &response);
    CHECK(st.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("another identity") {
    st = Call(*stub, "t-orders", CsrFor("spiffe://cluster.local/ns/shop/sa/payments"), &response);
    CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(st.error_message().find("payments") != std::string::npos);
    CHECK(s.Denied("identity_mismatch") == 1);
  }
  SECTION("a broken CSR") {
    st = Call(*stub, "t-orders", "garbage", &response);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(s.Denied("bad_csr") == 1);
  }
  SECTION("renewal with the mesh certificate as TLS client certificate, no token") {
    EvpPkeyPtr key = NewKey();
    v1::CreateCertificateResponse first;
    REQUIRE(Call(*stub, "t-orders", Csr(key.get(), {{uri}, {}, false, ""}), &first).ok());
    auto mtls = s.Client(PrivateKeyToPem(key.get()), first.cert_chain(0) + first.cert_chain(1));
    v1::CreateCertificateResponse renewed;
    st = Call(*mtls, "", CsrFor(uri), &renewed);
    INFO(st.error_message());
    REQUIRE(st.ok());
    CHECK(renewed.cert_chain_size() == 2);
    CHECK(s.issued.Recent(1)[0].authenticator == "mesh-certificate");
    // The mesh certificate proves orders, not payments.
    st = Call(*mtls, "", CsrFor("spiffe://cluster.local/ns/shop/sa/payments"), &renewed);
    CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
}

}  // namespace
}  // namespace weft::ca
