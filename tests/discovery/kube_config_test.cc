// Kubeconfig and in-cluster configuration, and the TLS they lead to: a
// client built from a kubeconfig (data and file variants) reaches the fake
// API server over verified HTTPS with a client certificate or a token; a
// wrong CA is refused.
#include "discovery/kube_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "discovery/kube_client.h"
#include "tests/fake_kube/fake_api_server.h"
#include "tests/fake_kube/test_pki.h"

namespace weft::discovery {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/weft-kubeconfig-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

TEST_CASE("kubeconfig: current context, server, CA and client certificate from -data fields", "[kube][config]") {
  const std::string text = absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: dev
  context: {cluster: dev, user: dev}
- name: prod
  context: {cluster: prod, user: admin, namespace: shop}
clusters:
- name: dev
  cluster: {server: "https://dev.example:1234"}
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: )",
                                        B64("CA PEM"), R"(
users:
- name: dev
  user: {token: dev-token}
- name: admin
  user:
    client-certificate-data: )",
                                        B64("CERT PEM"), "\n    client-key-data: ", B64("KEY PEM"), "\n");
  auto config = ParseKubeconfig(text, "/nowhere", "", "kubeconfig test");
  REQUIRE(config.ok());
  CHECK(config->scheme == "https");
  CHECK(config->host == "10.0.0.1");
  CHECK(config->port == 6443);
  CHECK(config->path_prefix.empty());
  CHECK(config->ca_pem == "CA PEM");
  CHECK(config->client_cert_pem == "CERT PEM");
  CHECK(config->client_key_pem == "KEY PEM");
  CHECK(config->token.empty());
  CHECK(config->namespace_ == "shop");
  CHECK(config->Url() == "https://10.0.0.1:6443");

  auto dev = ParseKubeconfig(text, "/nowhere", "dev", "kubeconfig test");
  REQUIRE(dev.ok());
  CHECK(dev->host == "dev.example");
  CHECK(dev->port == 1234);
  CHECK(dev->token == "dev-token");
  CHECK(dev->ca_pem.empty());
}

TEST_CASE("kubeconfig: file paths resolve against the kubeconfig's directory", "[kube][config]") {
  const std::string dir = TempDir();
  REQUIRE(mkdir((dir + "/pki").c_str(), 0700) == 0);
  Write(dir + "/pki/ca.crt", "CA FROM FILE");
  Write(dir + "/pki/client.crt", "CERT FROM FILE");
  Write(dir + "/pki/client.key", "KEY FROM FILE");
  Write(dir + "/token", "tok\n");
  Write(dir + "/config", R"(apiVersion: v1
kind: Config
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://[::1]:8443/k8s/clusters/c-1", certificate-authority: pki/ca.crt}}]
users: [{name: u, user: {client-certificate: pki/client.crt, client-key: pki/client.key}}]
)");
  auto config = LoadKubeconfig(dir + "/config");
  REQUIRE(config.ok());
  CHECK(config->host == "::1");
  CHECK(config->port == 8443);
  CHECK(config->path_prefix == "/k8s/clusters/c-1");
  CHECK(config->Url() == "https://[::1]:8443/k8s/clusters/c-1");
  CHECK(config->ca_pem == "CA FROM FILE");
  CHECK(config->client_cert_pem == "CERT FROM FILE");
  CHECK(config->client_key_pem == "KEY FROM FILE");

  Write(dir + "/config2", R"(current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://api.example"}}]
users: [{name: u, user: {tokenFile: token}}]
)");
  auto with_token_file = LoadKubeconfig(dir + "/config2");
  REQUIRE(with_token_file.ok());
  CHECK(with_token_file->port == 443);
  CHECK(with_token_file->token_file == dir + "/token");
}

TEST_CASE("kubeconfig: what weftd refuses, with a message that says why", "[kube][config]") {
  auto parse = [](const std::string& cluster, const std::string& user) {
    return ParseKubeconfig(absl::StrCat("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n",
                                        "clusters: [{name: k, cluster: ", cluster, "}]\n",
                                        "users: [{name: u, user: ", user, "}]\n"),
                           "/", "", "kc");
  };
  auto insecure = parse("{server: 'https://x', insecure-skip-tls-verify: true}", "{}");
  REQUIRE(!insecure.ok());
  CHECK(absl::StrContains(insecure.status().message(), "insecure-skip-tls-verify"));
  auto exec = parse("{server: 'https://x'}", "{exec: {command: aws}}");
  REQUIRE(!exec.ok());
  CHECK(absl::StrContains(exec.status().message(), "exec"));
  auto no_server = parse("{}", "{}");
  REQUIRE(!no_server.ok());
  CHECK(absl::StrContains(no_server.status().message(), "no server"));
  auto bad_scheme = parse("{server: 'ftp://x'}", "{}");
  REQUIRE(!bad_scheme.ok());
  auto half_cert = parse("{server: 'https://x'}", absl::StrCat("{client-certificate-data: ", B64("c"), "}"));
  REQUIRE(!half_cert.ok());
  CHECK(absl::StrContains(half_cert.status().message(), "together"));
  auto missing_file = parse("{server: 'https://x', certificate-authority: /no/such/ca.crt}", "{}");
  REQUIRE(!missing_file.ok());
  CHECK(absl::StrContains(missing_file.status().message(), "/no/such/ca.crt"));
  auto no_context = ParseKubeconfig("current-context: gone\ncontexts: []\n", "/", "", "kc");
  REQUIRE(!no_context.ok());
  CHECK(absl::StrContains(no_context.status().message(), "gone"));
  CHECK(!LoadKubeconfig("/no/such/kubeconfig").ok());
}

TEST_CASE("in-cluster: service host and port from the environment, CA and token from files", "[kube][config]") {
  const std::string dir = TempDir();
  InClusterPaths paths{dir + "/token", dir + "/ca.crt", dir + "/namespace"};
  unsetenv("KUBERNETES_SERVICE_HOST");
  CHECK(!LoadInClusterConfig(paths).ok());
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  CHECK(!LoadInClusterConfig(paths).ok());  // no files yet
  Write(dir + "/token", "sa-token");
  Write(dir + "/ca.crt", "CLUSTER CA");
  Write(dir + "/namespace", "weft-system");
  auto config = LoadInClusterConfig(paths);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  REQUIRE(config.ok());
  CHECK(config->Url() == "https://10.96.0.1:443");
  CHECK(config->ca_pem == "CLUSTER CA");
  CHECK(config->token_file == dir + "/token");
  CHECK(config->namespace_ == "weft-system");
}

// A kubeconfig for the TLS fake: CA and client certificate as data.
std::string TlsKubeconfig(int port, const std::string& ca, const std::string& cert, const std::string& key,
                          const std::string& token = "") {
  std::string user = token.empty() ? absl::StrCat("{client-certificate-data: ", B64(cert), ", client-key-data: ",
                                                  B64(key), "}")
                                   : absl::StrCat("{token: ", token, "}");
  return absl::StrCat("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n",
                      "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:", port,
                      "', certificate-authority-data: ", B64(ca), "}}]\n", "users: [{name: u, user: ", user, "}]\n");
}

TEST_CASE("TLS: the API server is verified and the client certificate is presented", "[kube][config][tls]") {
  const fake_kube::TestPki pki = fake_kube::MakeTestPki();
  const fake_kube::TestPki other = fake_kube::MakeTestPki();
  fake_kube::FakeApiServerOptions options;
  options.tls_cert_pem = pki.server_cert_pem;
  options.tls_key_pem = pki.server_key_pem;
  options.client_ca_pem = pki.ca_cert_pem;
  fake_kube::FakeApiServer server(options);
  REQUIRE(server.Start().ok());

  auto client_for = [&](const std::string& kubeconfig) {
    auto config = ParseKubeconfig(kubeconfig, "/", "", "kc");
    REQUIRE(config.ok());
    auto client = KubeClient::Create(*config);
    REQUIRE(client.ok());
    return std::move(client).value();
  };

  auto good = client_for(TlsKubeconfig(server.port(), pki.ca_cert_pem, pki.client_cert_pem, pki.client_key_pem));
  auto listed = good->Request("GET", "/api/v1/namespaces");
  REQUIRE(listed.ok());
  CHECK(listed->status == 200);
  CHECK(absl::StrContains(listed->body, "kube-system"));

  // A CA that did not sign the server's certificate: refused.
  auto wrong_ca = client_for(TlsKubeconfig(server.port(), other.ca_cert_pem, pki.client_cert_pem, pki.client_key_pem));
  auto refused = wrong_ca->Request("GET", "/api/v1/namespaces");
  CHECK(!refused.ok());

  // No client certificate: the server refuses the handshake.
  auto anonymous = client_for(TlsKubeconfig(server.port(), pki.ca_cert_pem, "", "", "some-token"));
  CHECK(!anonymous->Request("GET", "/api/v1/namespaces").ok());

  // A certificate from another CA: refused too.
  auto foreign = client_for(TlsKubeconfig(server.port(), pki.ca_cert_pem, other.client_cert_pem, other.client_key_pem));
  CHECK(!foreign->Request("GET", "/api/v1/namespaces").ok());

  // Mismatched certificate and key are caught before any connection.
  auto config = ParseKubeconfig(TlsKubeconfig(server.port(), pki.ca_cert_pem, pki.client_cert_pem, other.client_key_pem),
                                "/", "", "kc");
  REQUIRE(config.ok());
  CHECK(!KubeClient::Create(*config).ok());
}

TEST_CASE("TLS: the server name is checked against the certificate", "[kube][config][tls]") {
  const fake_kube::TestPki pki = fake_kube::MakeTestPki();
  fake_kube::FakeApiServerOptions options;
  options.tls_cert_pem = pki.server_cert_pem;
  options.tls_key_pem = pki.server_key_pem;
  options.host = "127.0.0.2";  // reachable on loopback, but not a name in the certificate
  fake_kube::FakeApiServer server(options);
  REQUIRE(server.Start().ok());
  KubeConfig config;
  config.host = "127.0.0.2";
  config.port = server.port();
  config.ca_pem = pki.ca_cert_pem;
  auto client = KubeClient::Create(config);
  REQUIRE(client.ok());
  CHECK(!(*client)->Request("GET", "/api/v1/namespaces").ok());
}

TEST_CASE("bearer tokens: a token file is re-read when it rotates", "[kube][config]") {
  fake_kube::FakeApiServerOptions options;
  options.api_tokens = {"token-1", "token-2"};
  fake_kube::FakeApiServer server(options);
  REQUIRE(server.Start().ok());
  const std::string dir = TempDir();
  Write(dir + "/token", "token-1\n");
  KubeConfig config;
  config.scheme = "http";
  config.host = "127.0.0.1";
  config.port = server.port();
  config.token_file = dir + "/token";
  auto client = KubeClient::Create(config);
  REQUIRE(client.ok());
  auto first = (*client)->Request("GET", "/api/v1/namespaces");
  REQUIRE(first.ok());
  CHECK(first->status == 200);

  // Rotation (the kubelet rewrites the projected file); the old token is revoked.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Write(dir + "/token", "token-2\n");
  server.Stop();
  fake_kube::FakeApiServerOptions rotated = options;
  rotated.api_tokens = {"token-2"};
  rotated.port = config.port;
  fake_kube::FakeApiServer server2(rotated);
  REQUIRE(server2.Start().ok());
  auto second = (*client)->Request("GET", "/api/v1/namespaces");
  REQUIRE(second.ok());
  CHECK(second->status == 200);

  KubeConfig wrong = config;
  wrong.token_file.clear();
  wrong.token = "token-1";
  auto stale = KubeClient::Create(wrong);
  REQUIRE(stale.ok());
  auto refused = (*stale)->Request("GET", "/api/v1/namespaces");
  REQUIRE(refused.ok());
  CHECK(refused->status == 401);
}

}  // namespace
}  // namespace weft::discovery
