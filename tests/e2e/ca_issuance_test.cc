// The built-in CA end to end with the real weftd (issue 5): a workload with a
// file-mode token gets a certificate over TLS on --xds-addr that the openssl
// CLI verifies against root-cert.pem in --ca-dir; a wrong token is refused;
// the certificate still verifies after weftd restarts; the mesh certificate
// alone (as the TLS client certificate) renews it; an on-demand root
// rotation keeps the old certificate verifying against the new bundle; the
// admin API and /metrics show it all.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ca/csr_builder.h"
#include "ca/x509.h"
#include "tests/e2e/harness/process.h"
#include "weft/ca/v1/ca.grpc.pb.h"

namespace weft::e2e {
namespace {

using nlohmann::json;
namespace v1 = weft::ca::v1;

const std::string kOrders = "spiffe://cluster.local/ns/shop/sa/orders";

struct Weftd {
  std::string dir = MakeTempDir("weft-e2e-ca-");
  std::string config_dir = dir + "/config";
  std::string ca_dir = dir + "/ca";
  int xds_port = PickFreePort();
  int admin_port = PickFreePort();
  int starts = 0;
  SubprocessPtr process;

  std::vector<std::string> extra_flags;

  explicit Weftd(std::vector<std::string> flags = {}) : extra_flags(std::move(flags)) {
    REQUIRE(mkdir(config_dir.c_str(), 0755) == 0);
    WriteFile(config_dir + "/tokens.yaml",
              "tokens:\n- {token: orders-secret, namespace: shop, serviceAccount: orders}\n");
    Start();
  }

  void Start() {
    std::vector<std::string> argv = {BinaryPath("weftd"),
                                     "--config-dir=" + config_dir,
                                     "--ca-dir=" + ca_dir,
                                     absl::StrCat("--xds-addr=127.0.0.1:", xds_port),
                                     absl::StrCat("--admin-addr=127.0.0.1:", admin_port),
                                     "--server-names=localhost,127.0.0.1"};
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    process = std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{},
                                           absl::StrCat(dir, "/weftd-", ++starts, ".log"));
    REQUIRE(process->Start().ok());
    REQUIRE(WaitForTcpPort("127.0.0.1", xds_port, absl::Seconds(15)));
    REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/healthz").status == 200; },
                    absl::Seconds(10)));
  }

  std::string Bundle() { return ReadFile(ca_dir + "/root-cert.pem"); }

  std::unique_ptr<v1::CertificateService::Stub> Client(const std::string& bundle, const std::string& key = "",
                                                       const std::string& chain = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = bundle;
    ssl.pem_private_key = key;
    ssl.pem_cert_chain = chain;
    return v1::CertificateService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", xds_port), grpc::SslCredentials(ssl)));
  }

  json Admin(const std::string& path) {
    HttpResponse r = HttpGet("127.0.0.1", admin_port, path);
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
};

grpc::Status Create(v1::CertificateService::Stub& stub, const std::string& token, const std::string& csr,
                    v1::CreateCertificateResponse* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::CreateCertificateRequest request;
  request.set_csr(csr);
  return stub.CreateCertificate(&ctx, request, out);
}

// `openssl verify -CAfile <bundle> -untrusted <intermediate> <leaf>`, run as
// the CLI: true when it prints "<leaf>: OK".
bool OpensslVerifies(const std::string& dir, const std::string& bundle_path, const std::string& intermediate,
                     const std::string& leaf, const std::string& tag) {
  std::string inter_path = dir + "/" + tag + "-intermediate.pem";
  std::string leaf_path = dir + "/" + tag + "-leaf.pem";
  WriteFile(inter_path, intermediate);
  WriteFile(leaf_path, leaf);
  Subprocess openssl(
      {"/usr/bin/openssl", "verify", "-CAfile", bundle_path, "-untrusted", inter_path, leaf_path}, {},
      dir + "/" + tag + "-openssl.log");
  REQUIRE(openssl.Start().ok());
  REQUIRE(openssl.Wait(absl::Seconds(20)));
  INFO(openssl.Log());
  return openssl.ExitCode() == 0 && openssl.Log().find(leaf_path + ": OK") != std::string::npos;
}

TEST_CASE("weftd's CA issues verifiable SPIFFE certificates over TLS, across restarts and rotations",
          "[e2e][ca]") {
  Weftd weftd;
  struct stat st {};
  REQUIRE(stat(weftd.ca_dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(stat((weftd.ca_dir + "/ca-key.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string bundle = weftd.Bundle();
  REQUIRE(bundle.find("BEGIN CERTIFICATE") != std::string::npos);
  auto stub = weftd.Client(bundle);

  // A bearer token from tokens.yaml gets a chain for its own identity.
  ca::EvpPkeyPtr key = ca::GenerateEcP256Key().value();
  const std::string csr = ca::MakeCsrPem(key.get(), {{kOrders}, {}, false, ""}).value();
  v1::CreateCertificateResponse issued;
  grpc::Status status = Create(*stub, "orders-secret", csr, &issued);
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(issued.cert_chain_size() == 2);
  REQUIRE(issued.trust_bundle_size() == 1);
  CHECK(issued.trust_bundle(0) == bundle);
  auto leaf = ca::ParseCertificatePem(issued.cert_chain(0)).value();
  CHECK(ca::UriSans(leaf.get()) == std::vector<std::string>{kOrders});
  CHECK(OpensslVerifies(weftd.dir, weftd.ca_dir + "/root-cert.pem", issued.cert_chain(1),
                        issued.cert_chain(0), "first"));

  // Wrong or missing credentials, and another identity.
  v1::CreateCertificateResponse refused;
  CHECK(Create(*stub, "guessed", csr, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(Create(*stub, "", csr, &refused).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  const std::string payments_csr =
      ca::MakeCsrPem(key.get(), {{"spiffe://cluster.local/ns/shop/sa/payments"}, {}, false, ""}).value();
  CHECK(Create(*stub, "orders-secret", payments_csr, &refused).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);

  // The admin API lists it; /metrics counts issued and denied requests.
  const std::string serial = ca::SerialHex(leaf.get());
  json certs = weftd.Admin("/api/v1/certificates");
  REQUIRE(certs["roots"].size() == 1);
  CHECK(certs["roots"][0]["expiresInSeconds"].get<int64_t>() > int64_t{3600} * 24 * 3600);
  CHECK(certs["issued"][0]["serial"] == serial);
  CHECK(certs["issued"][0]["identity"] == kOrders);
  HttpResponse metrics = HttpGet("127.0.0.1", weftd.admin_port, "/metrics");
  CHECK(metrics.body.find("weft_ca_certificates_issued_total 1") != std::string::npos);
  CHECK(metrics.body.find("weft_ca_requests_denied_total{reason=\"unauthenticated\"} 2") !=
        std::string::npos);
  CHECK(metrics.body.find("weft_ca_requests_denied_total{reason=\"identity_mismatch\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("weft_ca_root_expiry_seconds ") != std::string::npos);
  CHECK(metrics.body.find("weft_ca_intermediate_expiry_seconds ") != std::string::npos);

  // Restart: the same CA comes back, and the certificate issued before still verifies.
  weftd.process->Stop();
  weftd.Start();
  CHECK(weftd.Bundle() == bundle);
  CHECK(OpensslVerifies(weftd.dir, weftd.ca_dir + "/root-cert.pem", issued.cert_chain(1),
                        issued.cert_chain(0), "restart"));

  // Renewal: the mesh certificate as the TLS client certificate, no token.
  auto mtls =
      weftd.Client(bundle, ca::PrivateKeyToPem(key.get()), issued.cert_chain(0) + issued.cert_chain(1));
  ca::EvpPkeyPtr next_key = ca::GenerateEcP256Key().value();
  v1::CreateCertificateResponse renewed;
  status = Create(*mtls, "", ca::MakeCsrPem(next_key.get(), {{kOrders}, {}, false, ""}).value(), &renewed);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(OpensslVerifies(weftd.dir, weftd.ca_dir + "/root-cert.pem", renewed.cert_chain(1),
                        renewed.cert_chain(0), "renewed"));
  CHECK(weftd.Admin("/api/v1/certificates")["issued"][0]["authenticatedBy"] == "mesh-certificate");

  // An on-demand rotation: the bundle gains the new root and the old certificate keeps verifying.
  httplib::Client admin("127.0.0.1", weftd.admin_port);
  auto rotated = admin.Post("/api/v1/certificates/rotate");
  REQUIRE(rotated);
  CHECK(rotated->status == 202);
  CHECK(admin.Post("/api/v1/certificates/rotate")->status == 409);  // one at a time
  std::string two_roots = weftd.Bundle();
  CHECK(two_roots.rfind("BEGIN CERTIFICATE") != two_roots.find("BEGIN CERTIFICATE"));
  CHECK(two_roots.find(bundle) == 0);
  CHECK(weftd.Admin("/api/v1/certificates")["rotation"]["phase"] == "distributing");
  CHECK(OpensslVerifies(weftd.dir, weftd.ca_dir + "/root-cert.pem", issued.cert_chain(1),
                        issued.cert_chain(0), "rotation"));
  // A client that knows only the old bundle still reaches weftd, and gets both roots.
  v1::CreateCertificateResponse during;
  REQUIRE(Create(*weftd.Client(bundle), "orders-secret", csr, &during).ok());
  CHECK(during.trust_bundle_size() == 2);

  weftd.process->Stop();
  CHECK(weftd.process->ExitCode() == 0);
}

// A TLS 1.3 handshake in memory between two workloads, each presenting its
// chain (leaf, intermediate) and requiring the other's, both trusting
// `bundle`; "" on success, else what failed.
std::string MutualTlsHandshake(const v1::CreateCertificateResponse& server, EVP_PKEY* server_key,
                               const v1::CreateCertificateResponse& client, EVP_PKEY* client_key,
                               const std::string& bundle) {
  auto make_ctx = [&](const SSL_METHOD* method, const v1::CreateCertificateResponse& chain, EVP_PKEY* key) {
    SSL_CTX* ctx = SSL_CTX_new(method);
    SSL_CTX_use_certificate(ctx, ca::ParseCertificatePem(chain.cert_chain(0)).value().get());
    for (int i = 1; i < chain.cert_chain_size(); ++i) {
      SSL_CTX_add1_chain_cert(ctx, ca::ParseCertificatePem(chain.cert_chain(i)).value().get());
    }
    SSL_CTX_use_PrivateKey(ctx, key);
    std::vector<ca::X509Ptr> roots = ca::ParseCertificatesPem(bundle).value();
    for (auto& root : roots) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), root.get());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    return ctx;
  };
  SSL_CTX* sctx = make_ctx(TLS_server_method(), server, server_key);
  SSL_CTX* cctx = make_ctx(TLS_client_method(), client, client_key);
  SSL* s = SSL_new(sctx);
  SSL* c = SSL_new(cctx);
  BIO *sb = nullptr, *cb = nullptr;
  BIO_new_bio_pair(&sb, 0, &cb, 0);
  SSL_set_bio(s, sb, sb);
  SSL_set_bio(c, cb, cb);
  SSL_set_accept_state(s);
  SSL_set_connect_state(c);
  std::string error;
  bool done_s = false, done_c = false;
  for (int round = 0; round < 50 && !(done_s && done_c) && error.empty(); ++round) {
    for (auto [ssl, done, who] : {std::tuple{c, &done_c, "client"}, std::tuple{s, &done_s, "server"}}) {
      if (*done) continue;
      int rc = SSL_do_handshake(ssl);
      if (rc == 1) {
        *done = true;
      } else if (int e = SSL_get_error(ssl, rc); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        error = absl::StrCat(who, ": ", X509_verify_cert_error_string(SSL_get_verify_result(ssl)), " / ",
                             ca::DrainOpenSslErrors());
        break;
      }
    }
  }
  if (error.empty() && !(done_s && done_c)) error = "the handshake did not finish";
  if (error.empty() && (SSL_get_verify_result(s) != X509_V_OK || SSL_get_verify_result(c) != X509_V_OK)) {
    error = "a peer did not verify";
  }
  SSL_free(s);
  SSL_free(c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  return error;
}

// X509_verify_cert of the issued chain under `bundle`, at `at` (now by default).
absl::Status VerifyAgainst(const std::string& bundle, const v1::CreateCertificateResponse& chain,
                           ca::WallTime at = std::chrono::system_clock::now()) {
  auto store = ca::MakeTrustStore(ca::ParseCertificatesPem(bundle).value()).value();
  std::vector<ca::X509Ptr> intermediates;
  for (int i = 1; i < chain.cert_chain_size(); ++i) {
    intermediates.push_back(ca::ParseCertificatePem(chain.cert_chain(i)).value());
  }
  return ca::VerifyCertificate(store.get(), ca::ParseCertificatePem(chain.cert_chain(0)).value().get(),
                               intermediates, at);
}

TEST_CASE(
    "a root rotation end to end: an old-root certificate keeps verifying and handshaking through "
    "distributing, draining and stable",
    "[e2e][ca][rotation]") {
  // One-minute certificates, so that the old root may leave after a minute;
  // with no proxy connected the bundle counts as distributed at once.
  Weftd weftd({"--cert-ttl=1m"});
  const std::string old_bundle = weftd.Bundle();
  auto phase = [&] { return weftd.Admin("/api/v1/certificates")["rotation"]["phase"].get<std::string>(); };
  REQUIRE(phase() == "stable");

  ca::EvpPkeyPtr key_a = ca::GenerateEcP256Key().value();
  v1::CreateCertificateResponse a;
  REQUIRE(Create(*weftd.Client(old_bundle), "orders-secret",
                 ca::MakeCsrPem(key_a.get(), {{kOrders}, {}, false, ""}).value(), &a)
              .ok());
  REQUIRE(VerifyAgainst(old_bundle, a).ok());

  httplib::Client admin("127.0.0.1", weftd.admin_port);
  auto rotated = admin.Post("/api/v1/certificates/rotate");
  REQUIRE(rotated);
  REQUIRE(rotated->status == 202);

  // distributing: {old, new}; the old intermediate still signs.
  std::string bundle = weftd.Bundle();
  CHECK(ca::ParseCertificatesPem(bundle).value().size() == 2);
  CHECK(VerifyAgainst(bundle, a).ok());
  CHECK(OpensslVerifies(weftd.dir, weftd.ca_dir + "/root-cert.pem", a.cert_chain(1), a.cert_chain(0),
                        "distributing"));

  // draining: the new intermediate signs; both roots stay trusted.
  REQUIRE(WaitFor([&] { return phase() == "draining"; }, absl::Seconds(60)));
  bundle = weftd.Bundle();
  REQUIRE(ca::ParseCertificatesPem(bundle).value().size() == 2);
  ca::EvpPkeyPtr key_b = ca::GenerateEcP256Key().value();
  v1::CreateCertificateResponse b;
  grpc::Status issued = Create(*weftd.Client(bundle), "orders-secret",
                               ca::MakeCsrPem(key_b.get(), {{kOrders}, {}, false, ""}).value(), &b);
  INFO(issued.error_message());
  REQUIRE(issued.ok());
  CHECK(b.cert_chain(1) != a.cert_chain(1));       // another intermediate
  CHECK_FALSE(VerifyAgainst(old_bundle, b).ok());  // under the new root only
  CHECK(VerifyAgainst(bundle, a).ok());
  CHECK(VerifyAgainst(bundle, b).ok());
  CHECK(OpensslVerifies(weftd.dir, weftd.ca_dir + "/root-cert.pem", a.cert_chain(1), a.cert_chain(0),
                        "draining"));
  // An old-root workload and a new-root workload handshake, each way round.
  CHECK(MutualTlsHandshake(a, key_a.get(), b, key_b.get(), bundle).empty());
  CHECK(MutualTlsHandshake(b, key_b.get(), a, key_a.get(), bundle).empty());
  // (Trusting the old root alone, the new-root side is refused: the check can fail.)
  CHECK_FALSE(MutualTlsHandshake(a, key_a.get(), b, key_b.get(), old_bundle).empty());

  // stable: once every leaf the old root signed has expired, only the new root.
  REQUIRE(WaitFor([&] { return phase() == "stable"; }, absl::Seconds(180)));
  const std::string final_bundle = weftd.Bundle();
  REQUIRE(ca::ParseCertificatesPem(final_bundle).value().size() == 1);
  // b was issued as draining began and lives a minute, as long as draining
  // lasts at most: it may expire just as the old root leaves. Its chain is
  // checked within its lifetime; a leaf issued now is checked now.
  const ca::WallTime b_expires = ca::NotAfter(ca::ParseCertificatePem(b.cert_chain(0)).value().get());
  CHECK(VerifyAgainst(final_bundle, b, b_expires - std::chrono::seconds(10)).ok());
  ca::EvpPkeyPtr key_c = ca::GenerateEcP256Key().value();
  v1::CreateCertificateResponse c;
  REQUIRE(Create(*weftd.Client(final_bundle), "orders-secret",
                 ca::MakeCsrPem(key_c.get(), {{kOrders}, {}, false, ""}).value(), &c)
              .ok());
  CHECK(VerifyAgainst(final_bundle, c).ok());
  CHECK_FALSE(VerifyAgainst(old_bundle, c).ok());
  CHECK(ca::NotAfter(ca::ParseCertificatePem(a.cert_chain(0)).value().get()) <
        std::chrono::system_clock::now());
  weftd.process->Stop();
  CHECK(weftd.process->ExitCode() == 0);
}

}  // namespace
}  // namespace weft::e2e
