// xDS on weftd's TLS port, end to end: a proxy that got its certificate from
// the CA opens delta ADS with it as the TLS client certificate; weftd takes
// the proxy's identity from the certificate (not from what the node claims),
// pushes the trust bundle as SDS Secret ROOTCA, and pushes it again when the
// root rotates. A stream without a mesh certificate is refused.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "ca/csr_builder.h"
#include "ca/x509.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "tests/e2e/harness/process.h"
#include "weft/ca/v1/ca.grpc.pb.h"

namespace weft::e2e {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using nlohmann::json;
const char kSecretType[] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

std::string RootcaBundle(const DeltaDiscoveryResponse& r) {
  for (const auto& res : r.resources()) {
    envoy::extensions::transport_sockets::tls::v3::Secret secret;
    if (res.name() == "ROOTCA" && res.resource().UnpackTo(&secret)) {
      return secret.validation_context().trusted_ca().inline_string();
    }
  }
  return "";
}

TEST_CASE("ADS over TLS: identity from the mesh certificate, ROOTCA pushed and re-pushed on rotation",
          "[e2e][xds][tls]") {
  std::string dir = MakeTempDir("weft-e2e-xds-tls-");
  std::string config_dir = dir + "/config";
  REQUIRE(mkdir(config_dir.c_str(), 0755) == 0);
  WriteFile(config_dir + "/tokens.yaml", "tokens:\n- {token: orders-secret, namespace: shop, serviceAccount: orders}\n");
  WriteFile(config_dir + "/mesh.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: payments, namespace: shop}\n"
            "spec: {selector: {app: payments}, ports: [{name: http, port: 8080}]}\n");
  int xds_port = PickFreePort();
  int admin_port = PickFreePort();
  Subprocess weftd({BinaryPath("weftd"), "--config-dir=" + config_dir, "--ca-dir=" + dir + "/ca",
                    absl::StrCat("--xds-addr=127.0.0.1:", xds_port), absl::StrCat("--admin-addr=127.0.0.1:", admin_port),
                    "--server-names=localhost,127.0.0.1"},
                   {}, dir + "/weftd.log");
  REQUIRE(weftd.Start().ok());
  REQUIRE(WaitForTcpPort("127.0.0.1", xds_port, absl::Seconds(15)));
  REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; }, absl::Seconds(10)));
  const std::string bundle = ReadFile(dir + "/ca/root-cert.pem");

  // The workload's own key, never sent anywhere; its certificate from the CA.
  ca::EvpPkeyPtr key = ca::GenerateEcP256Key().value();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = bundle;
  auto ca_stub = weft::ca::v1::CertificateService::NewStub(
      grpc::CreateChannel(absl::StrCat("localhost:", xds_port), grpc::SslCredentials(ssl)));
  weft::ca::v1::CreateCertificateRequest csr;
  csr.set_csr(ca::MakeCsrPem(key.get(), {{"spiffe://cluster.local/ns/shop/sa/orders"}, {}, false, ""}).value());
  weft::ca::v1::CreateCertificateResponse issued;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer orders-secret");
    REQUIRE(ca_stub->CreateCertificate(&ctx, csr, &issued).ok());
  }

  SECTION("a stream without a client certificate is refused") {
    auto stub = AggregatedDiscoveryService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", xds_port), grpc::SslCredentials(ssl)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->DeltaAggregatedResources(&ctx);
    DeltaDiscoveryRequest req;
    req.mutable_node()->set_id("sidecar~127.0.0.9~x.shop~shop.svc.cluster.local");
    req.set_type_url(kSecretType);
    req.add_resource_names_subscribe("ROOTCA");
    stream->Write(req);
    DeltaDiscoveryResponse resp;
    CHECK_FALSE(stream->Read(&resp));
    grpc::Status status = stream->Finish();
    CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }

  SECTION("the certificate's identity wins over the node's claims; ROOTCA follows the rotation") {
    grpc::SslCredentialsOptions mtls = ssl;
    mtls.pem_private_key = ca::PrivateKeyToPem(key.get());
    mtls.pem_cert_chain = issued.cert_chain(0) + issued.cert_chain(1);
    auto stub = AggregatedDiscoveryService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", xds_port), grpc::SslCredentials(mtls)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stream = stub->DeltaAggregatedResources(&ctx);
    DeltaDiscoveryRequest req;
    req.mutable_node()->set_id("sidecar~127.0.0.9~x.default~default.svc.cluster.local");
    req.mutable_node()->set_user_agent_name("weft-proxy");
    (*req.mutable_node()->mutable_metadata()->mutable_fields())["SERVICE_ACCOUNT"].set_string_value("admin");
    req.set_type_url(kSecretType);
    req.add_resource_names_subscribe("ROOTCA");
    REQUIRE(stream->Write(req));
    DeltaDiscoveryResponse first;
    REQUIRE(stream->Read(&first));
    CHECK(RootcaBundle(first) == bundle);
    DeltaDiscoveryRequest ack;
    ack.set_type_url(kSecretType);
    ack.set_response_nonce(first.nonce());
    REQUIRE(stream->Write(ack));

    json proxies;
    REQUIRE(WaitFor([&] {
      proxies = json::parse(HttpGet("127.0.0.1", admin_port, "/api/v1/proxies").body)["proxies"];
      return proxies.size() == 1 && proxies[0]["status"] == "SYNCED";
    }, absl::Seconds(10)));
    CHECK(proxies[0]["identity"]["namespace"] == "shop");
    CHECK(proxies[0]["identity"]["serviceAccount"] == "orders");

    // Rotation: the bundle now holds the old and the new root, and is pushed.
    httplib::Client admin("127.0.0.1", admin_port);
    auto rotated = admin.Post("/api/v1/certificates/rotate");
    REQUIRE(rotated);
    REQUIRE(rotated->status == 202);
    DeltaDiscoveryResponse second;
    REQUIRE(stream->Read(&second));
    std::string two_roots = RootcaBundle(second);
    CHECK(two_roots.find(bundle) != std::string::npos);
    CHECK(two_roots.size() > bundle.size());
    CHECK(two_roots == ReadFile(dir + "/ca/root-cert.pem"));
    ctx.TryCancel();
  }
  weftd.Stop();
}

}  // namespace
}  // namespace weft::e2e
