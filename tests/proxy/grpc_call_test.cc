// weft-proxy's own gRPC client (proxy/grpc_call.h) against a real gRPC
// server (grpc++ with TLS, certificates from Weft's CA code), the peer it
// meets in weftd: unary calls with metadata and the client certificate,
// status codes and percent-encoded messages, UNIMPLEMENTED methods (the
// delta-to-SotW fallback), bidirectional streams with messages larger than
// the HTTP/2 windows both ways, deadlines, the receive limit, cancellation
// from another thread while blocked, and servers it must not trust.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "ca/authority_factory.h"
#include "ca/csr_signer.h"
#include "ca/x509.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "proxy/grpc_call.h"
#include "tests/ca/test_ca.h"
#include "weft/ca/v1/ca.grpc.pb.h"

namespace weft::proxy {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using Clock = std::chrono::steady_clock;

constexpr char kClientId[] = "spiffe://cluster.local/ns/shop/sa/cart";
constexpr char kCaMethod[] = "/weft.ca.v1.CertificateService/CreateCertificate";
constexpr char kDeltaMethod[] =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
constexpr char kSotwMethod[] =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

struct Pki {
  ca::SigningAuthorityConstSharedPtr authority;
  std::string roots_pem;
  std::string server_key_pem, server_chain_pem;  // SANs: localhost, 127.0.0.1
  ca::EvpPkeyPtr client_key;
  std::vector<ca::X509Ptr> client_chain;

  Pki() {
    auto now = std::chrono::system_clock::now();
    auto a = ca::CreateAuthority("cluster.local", std::chrono::hours(1), now);
    REQUIRE(a.ok());
    authority = *a;
    roots_pem = ca::CertificateToPem(authority->root.get());
    auto key = ca::GenerateEcP256Key();
    REQUIRE(key.ok());
    auto serving = ca::CsrSigner().SignServing(key->get(), {"localhost", "127.0.0.1"}, std::chrono::hours(1),
                                               *authority, now);
    REQUIRE(serving.ok());
    server_key_pem = ca::PrivateKeyToPem(key->get());
    server_chain_pem = absl::StrJoin(serving->chain_pem, "");

    ca::testing::IssuedWorkload client = ca::testing::IssueWorkload(*authority, kClientId, now);
    client_key = std::move(client.key);
    client_chain = std::move(client.chain);
  }
};

// As weft-proxy does (proxy/grpc_call.h): a write to a closed connection
// must fail, not end the test binary.
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

const Pki& TestPki() {
  static const Pki* pki = new Pki();
  return *pki;
}

// The peer's SPIFFE ID as gRPC's server saw it ("" without a client certificate).
std::string PeerUri(grpc::ServerContext* ctx) {
  for (const auto& v : ctx->auth_context()->FindPropertyValues("x509_subject_alternative_name")) {
    std::string s(v.data(), v.size());
    if (s.rfind("spiffe://", 0) == 0) return s;
  }
  return "";
}

class TestCa final : public weft::ca::v1::CertificateService::Service {
 public:
  grpc::Status CreateCertificate(grpc::ServerContext* ctx,
                                 const weft::ca::v1::CreateCertificateRequest* request,
                                 weft::ca::v1::CreateCertificateResponse* response) override {
    auto md = ctx->client_metadata();
    auto auth = md.find("authorization");
    if (auth == md.end() || std::string(auth->second.data(), auth->second.size()) != "Bearer t0k3n") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token refused: 100% «wrong»\nsee logs");
    }
    if (request->csr() == "sleep") std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    deadline_left = ctx->deadline() - std::chrono::system_clock::now();
    response->add_cert_chain(request->csr() + " signed for " + PeerUri(ctx));
    response->add_trust_bundle(std::string(request->validity_seconds(), 'r'));  // size chosen by the test
    return grpc::Status::OK;
  }
  std::chrono::system_clock::duration deadline_left{};
};

// Delta ADS that answers each request with one response whose resource is
// as large as the request's first subscribed name says ("big:N"); "hold"
// makes it wait without answering until the client goes away.
class TestAds final : public envoy::service::discovery::v3::AggregatedDiscoveryService::Service {
 public:
  grpc::Status DeltaAggregatedResources(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<DeltaDiscoveryResponse, DeltaDiscoveryRequest>* stream) override {
    peer = PeerUri(ctx);
    DeltaDiscoveryRequest req;
    int n = 0;
    while (stream->Read(&req)) {
      std::string name = req.resource_names_subscribe_size() > 0 ? req.resource_names_subscribe(0) : "";
      if (name == "hold") {
        held.Notify();
        while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return grpc::Status::CANCELLED;
      }
      if (name.rfind("burst:", 0) == 0) {  // that many small responses at once, numbered
        for (int i = 0, count = std::stoi(name.substr(6)); i < count; ++i) {
          DeltaDiscoveryResponse r;
          r.set_nonce(std::to_string(i));
          r.add_resources()->mutable_resource()->set_value(std::string(100 + i % 7, 'b'));
          if (!stream->Write(r)) break;
        }
        ++n;
        continue;
      }
      DeltaDiscoveryResponse resp;
      resp.set_type_url(req.type_url());
      resp.set_nonce(std::to_string(++n));
      auto* r = resp.add_resources();
      r->set_name(name);
      // The request's size comes back, so the test sees it arrived whole.
      r->set_version(std::to_string(req.ByteSizeLong()));
      if (name.rfind("big:", 0) == 0)
        r->mutable_resource()->set_value(std::string(std::stoul(name.substr(4)), 'x'));
      if (!stream->Write(resp)) break;
    }
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no more requests after " + std::to_string(n));
  }
  std::string peer;
  absl::Notification held;
};

struct Server {
  TestCa ca;
  TestAds ads;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  explicit Server(bool require_client_cert = false) {
    const Pki& pki = TestPki();
    grpc::SslServerCredentialsOptions ssl(require_client_cert
                                              ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                              : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = pki.roots_pem;
    ssl.pem_key_cert_pairs.push_back({pki.server_key_pem, pki.server_chain_pem});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
    builder.RegisterService(&ca);
    builder.RegisterService(&ads);  // StreamAggregatedResources stays unimplemented
    server = builder.BuildAndStart();
    REQUIRE(server != nullptr);
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1)); }
};

GrpcCallOptions Options(int port, bool with_client_cert = true) {
  const Pki& pki = TestPki();
  GrpcCallOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.roots_pem = pki.roots_pem;
  if (with_client_cert) {
    o.client_key = pki.client_key.get();
    o.client_chain = &pki.client_chain;
  }
  o.metadata = {{"authorization", "Bearer t0k3n"}};
  return o;
}

TEST_CASE("a unary call carries metadata and the client certificate, and honours the deadline",
          "[proxy][grpc]") {
  Server server;
  GrpcCallOptions options = Options(server.port);
  options.deadline = Clock::now() + std::chrono::seconds(5);
  weft::ca::v1::CreateCertificateRequest request;
  request.set_csr("csr");
  request.set_validity_seconds(3);
  weft::ca::v1::CreateCertificateResponse response;
  REQUIRE(GrpcUnaryCall(options, kCaMethod, request, &response).ok());
  REQUIRE(response.cert_chain_size() == 1);
  CHECK(response.cert_chain(0) == std::string("csr signed for ") + kClientId);
  CHECK(response.trust_bundle(0) == "rrr");
  // grpc-timeout reached the server as its deadline.
  CHECK(server.ca.deadline_left > std::chrono::seconds(3));
  CHECK(server.ca.deadline_left <= std::chrono::seconds(5));

  SECTION("without a client certificate, by name rather than address") {
    GrpcCallOptions anonymous = Options(server.port, false);
    anonymous.target = "localhost:" + std::to_string(server.port);
    REQUIRE(GrpcUnaryCall(anonymous, kCaMethod, request, &response).ok());
    CHECK(response.cert_chain(0) == "csr signed for ");
  }
}

TEST_CASE("the server's status code and percent-encoded message come back", "[proxy][grpc]") {
  Server server;
  GrpcCallOptions options = Options(server.port);
  options.metadata = {{"authorization", "Bearer wrong"}};
  weft::ca::v1::CreateCertificateRequest request;
  weft::ca::v1::CreateCertificateResponse response;
  absl::Status s = GrpcUnaryCall(options, kCaMethod, request, &response);
  CHECK(s.code() == absl::StatusCode::kUnauthenticated);
  CHECK(s.message() == "token refused: 100% «wrong»\nsee logs");
}

TEST_CASE("a method the server does not implement is UNIMPLEMENTED", "[proxy][grpc]") {
  Server server;
  GrpcCall call(Options(server.port));
  REQUIRE(call.Start(kSotwMethod).ok());
  envoy::service::discovery::v3::DiscoveryRequest req;
  req.set_type_url("t");
  call.Write(req);
  envoy::service::discovery::v3::DiscoveryResponse resp;
  CHECK_FALSE(call.Read(&resp));
  CHECK(call.Finish().code() == absl::StatusCode::kUnimplemented);
}

TEST_CASE("a bidirectional stream: round trips, messages over the windows both ways, half-close",
          "[proxy][grpc]") {
  Server server(/*require_client_cert=*/true);
  GrpcCall call(Options(server.port));
  REQUIRE(call.Start(kDeltaMethod).ok());
  for (int i = 0; i < 3; ++i) {
    DeltaDiscoveryRequest req;
    req.set_type_url("type-" + std::to_string(i));
    req.add_resource_names_subscribe("small");
    REQUIRE(call.Write(req));
    DeltaDiscoveryResponse resp;
    REQUIRE(call.Read(&resp));
    CHECK(resp.type_url() == req.type_url());
    CHECK(resp.nonce() == std::to_string(i + 1));
    CHECK(resp.resources(0).version() == std::to_string(req.ByteSizeLong()));
  }
  // 3 MB each way: several times the HTTP/2 windows (64 KB at weftd's side,
  // 1 MB at ours), so both sides' flow control has to move.
  DeltaDiscoveryRequest big;
  big.set_type_url("big");
  big.add_resource_names_subscribe("big:3000000");
  big.mutable_node()->set_id(std::string(3'000'000, 'n'));
  REQUIRE(call.Write(big));
  DeltaDiscoveryResponse resp;
  REQUIRE(call.Read(&resp));
  CHECK(resp.resources(0).resource().value().size() == 3'000'000);
  CHECK(resp.resources(0).version() == std::to_string(big.ByteSizeLong()));
  CHECK(server.ads.peer == kClientId);

  REQUIRE(call.WritesDone());
  CHECK_FALSE(call.Read(&resp));
  absl::Status s = call.Finish();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s.message() == "no more requests after 4");
}

TEST_CASE("many responses back to back arrive whole and in order", "[proxy][grpc]") {
  Server server;
  GrpcCall call(Options(server.port));
  REQUIRE(call.Start(kDeltaMethod).ok());
  DeltaDiscoveryRequest req;
  req.add_resource_names_subscribe("burst:300");
  REQUIRE(call.Write(req));
  // The server queues them while nobody reads.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 300; ++i) {
    DeltaDiscoveryResponse resp;
    REQUIRE(call.Read(&resp));
    REQUIRE(resp.nonce() == std::to_string(i));
    REQUIRE(resp.resources(0).resource().value() == std::string(100 + i % 7, 'b'));
  }
  REQUIRE(call.WritesDone());
  DeltaDiscoveryResponse resp;
  CHECK_FALSE(call.Read(&resp));
  CHECK(call.Finish().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("a response over the receive limit ends the call with RESOURCE_EXHAUSTED", "[proxy][grpc]") {
  Server server;
  GrpcCallOptions options = Options(server.port);
  options.max_receive_message_bytes = 100'000;
  GrpcCall call(options);
  REQUIRE(call.Start(kDeltaMethod).ok());
  DeltaDiscoveryRequest req;
  req.add_resource_names_subscribe("big:200000");
  REQUIRE(call.Write(req));
  DeltaDiscoveryResponse resp;
  CHECK_FALSE(call.Read(&resp));
  CHECK(call.Finish().code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("Cancel from another thread ends a blocked Read", "[proxy][grpc]") {
  Server server;
  GrpcCall call(Options(server.port));
  REQUIRE(call.Start(kDeltaMethod).ok());
  DeltaDiscoveryRequest req;
  req.add_resource_names_subscribe("hold");
  REQUIRE(call.Write(req));
  REQUIRE(server.ads.held.WaitForNotificationWithTimeout(absl::Seconds(5)));
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    call.Cancel();
  });
  auto start = Clock::now();
  DeltaDiscoveryResponse resp;
  CHECK_FALSE(call.Read(&resp));
  canceller.join();
  CHECK(Clock::now() - start < std::chrono::seconds(2));
  CHECK(call.Finish().code() == absl::StatusCode::kCancelled);
}

TEST_CASE("a deadline that passes while waiting ends the call with DEADLINE_EXCEEDED", "[proxy][grpc]") {
  Server server;
  GrpcCallOptions options = Options(server.port);
  options.deadline = Clock::now() + std::chrono::milliseconds(300);
  weft::ca::v1::CreateCertificateRequest request;
  request.set_csr("sleep");
  weft::ca::v1::CreateCertificateResponse response;
  auto start = Clock::now();
  CHECK(GrpcUnaryCall(options, kCaMethod, request, &response).code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(Clock::now() - start < std::chrono::milliseconds(1200));
}

TEST_CASE("a server it cannot authenticate, or cannot reach, is UNAVAILABLE", "[proxy][grpc]") {
  Server server;
  weft::ca::v1::CreateCertificateRequest request;
  weft::ca::v1::CreateCertificateResponse response;

  GrpcCallOptions wrong_name = Options(server.port);
  wrong_name.server_name = "weftd.weft-system.svc";  // not among the certificate's names
  absl::Status s = GrpcUnaryCall(wrong_name, kCaMethod, request, &response);
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(s.message()), Catch::Contains("weftd's certificate"));

  GrpcCallOptions other_roots = Options(server.port);
  auto other = ca::CreateAuthority("cluster.local", std::chrono::hours(1), std::chrono::system_clock::now());
  REQUIRE(other.ok());
  other_roots.roots_pem = ca::CertificateToPem((*other)->root.get());
  s = GrpcUnaryCall(other_roots, kCaMethod, request, &response);
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(s.message()), Catch::Contains("weftd's certificate"));

  GrpcCallOptions nobody = Options(1);  // nothing listens on port 1
  s = GrpcUnaryCall(nobody, kCaMethod, request, &response);
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(s.message()), Catch::Contains("cannot connect"));
}

TEST_CASE("grpc-message decoding and the HTTP status mapping", "[proxy][grpc]") {
  CHECK(PercentDecode("a%20b%25c%e2%9c%93") == "a b%c\xe2\x9c\x93");
  CHECK(PercentDecode("trailing %2") == "trailing %2");
  CHECK(PercentDecode("%zz") == "%zz");
  CHECK(GrpcCodeForHttpStatus(404) == absl::StatusCode::kUnimplemented);
  CHECK(GrpcCodeForHttpStatus(503) == absl::StatusCode::kUnavailable);
  CHECK(GrpcCodeForHttpStatus(401) == absl::StatusCode::kUnauthenticated);
  CHECK(GrpcCodeForHttpStatus(500) == absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace weft::proxy
