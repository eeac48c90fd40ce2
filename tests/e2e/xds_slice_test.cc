// The first vertical slice, end to end with real processes: weftd in file
// mode, two greeter backends, and greeter-client using gRPC's own xDS
// resolver (xds:///greeter.default.svc.cluster.local:50051) against weftd's
// plaintext ADS port. The test moves the endpoint by rewriting the manifest
// and breaks a manifest, and watches what a user would watch: which backend
// answers, and what the admin API says.
#include <sys/stat.h>

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {
namespace {

using nlohmann::json;

std::string Manifest(int backend_port) {
  return absl::StrCat(R"(apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: default}
spec:
  selector: {app: greeter}
  ports:
  - {name: grpc, port: 50051}
---
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: greeter-0, namespace: default, labels: {app: greeter}}
spec: {address: 127.0.0.1, ports: {grpc: )",
                      backend_port, "}, serviceAccount: greeter}\n");
}

struct Mesh {
  std::string dir = MakeTempDir("weft-e2e-slice-");
  std::string config_dir = dir + "/config";
  int xds_port = PickFreePort();
  int admin_port = PickFreePort();
  int tls_port = PickFreePort();
  int port_a = PickFreePort();
  int port_b = PickFreePort();
  SubprocessPtr weftd, backend_a, backend_b;

  Mesh() {
    REQUIRE(mkdir(config_dir.c_str(), 0755) == 0);
    WriteFile(config_dir + "/greeter.yaml", Manifest(port_a));
    backend_a = Start({BinaryPath("greeter-server"), absl::StrCat("--addr=127.0.0.1:", port_a),
                       "--name=backend-a"},
                      "backend-a.log");
    backend_b = Start({BinaryPath("greeter-server"), absl::StrCat("--addr=127.0.0.1:", port_b),
                       "--name=backend-b"},
                      "backend-b.log");
    weftd = Start({BinaryPath("weftd"), "--config-dir=" + config_dir, "--ca-dir=" + dir + "/ca",
                   absl::StrCat("--xds-addr=127.0.0.1:", tls_port),
                   absl::StrCat("--xds-plaintext-addr=127.0.0.1:", xds_port),
                   absl::StrCat("--admin-addr=127.0.0.1:", admin_port)},
                  "weftd.log");
    REQUIRE(WaitForTcpPort("127.0.0.1", port_a, absl::Seconds(10)));
    REQUIRE(WaitForTcpPort("127.0.0.1", port_b, absl::Seconds(10)));
    REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; },
                    absl::Seconds(10)));
  }

  SubprocessPtr Start(std::vector<std::string> argv, const std::string& log) {
    REQUIRE(!argv[0].empty());
    auto p = std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{},
                                          dir + "/" + log);
    REQUIRE(p->Start().ok());
    return p;
  }

  SubprocessPtr StartClient(int count, const std::string& log) {
    return Start({BinaryPath("greeter-client"), absl::StrCat("--xds-server=127.0.0.1:", xds_port),
                  absl::StrCat("--count=", count), "--interval=50ms", "--deadline=2s"},
                 log);
  }

  json Admin(const std::string& path) {
    HttpResponse r = HttpGet("127.0.0.1", admin_port, path);
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
};

TEST_CASE("a gRPC xDS client reaches the backend through weftd and follows a moved endpoint",
          "[e2e][xds]") {
  Mesh mesh;
  SubprocessPtr client = mesh.StartClient(0, "client.log");

  // Traffic reaches backend-a, found only through xDS.
  REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).size() >= 3; }, absl::Seconds(20)));
  for (const auto& b : GreeterBackends(client->Log())) CHECK(b == "backend-a");

  // The admin API shows the client, in sync for all four types.
  REQUIRE(WaitFor([&] {
    json proxies = mesh.Admin("/api/v1/proxies")["proxies"];
    return proxies.size() == 1 && proxies[0]["status"] == "SYNCED" && proxies[0]["types"].size() == 4;
  }, absl::Seconds(10)));
  json proxy = mesh.Admin("/api/v1/proxies")["proxies"][0];
  CHECK(absl::StartsWith(proxy["id"].get<std::string>(), "proxyless~"));
  for (const char* type : {"lds", "rds", "cds", "eds"}) {
    INFO(type);
    CHECK(proxy["types"][type]["status"] == "SYNCED");
    CHECK(proxy["types"][type]["versionSent"] == proxy["types"][type]["versionAcked"]);
  }
  std::string eds_version = proxy["types"]["eds"]["versionAcked"];
  std::string cds_version = proxy["types"]["cds"]["versionAcked"];

  // Move the endpoint to backend-b by rewriting the manifest; nothing restarts.
  size_t before = GreeterBackends(client->Log()).size();
  WriteFile(mesh.config_dir + "/greeter.yaml", Manifest(mesh.port_b));
  REQUIRE(WaitFor([&] {
    auto backends = GreeterBackends(client->Log());
    return backends.size() > before && backends.back() == "backend-b";
  }, absl::Seconds(20)));
  // Once moved, every later RPC goes to backend-b.
  size_t moved_at = GreeterBackends(client->Log()).size();
  REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).size() >= moved_at + 5; }, absl::Seconds(10)));
  auto backends = GreeterBackends(client->Log());
  for (size_t i = moved_at; i < backends.size(); ++i) CHECK(backends[i] == "backend-b");
  CHECK(client->Running());
  CHECK(mesh.weftd->Running());

  // Only the endpoints changed: the EDS version moved, the cluster's did not.
  REQUIRE(WaitFor([&] {
    json p = mesh.Admin("/api/v1/proxies")["proxies"][0];
    return p["types"]["eds"]["versionAcked"] != eds_version && p["status"] == "SYNCED";
  }, absl::Seconds(10)));
  proxy = mesh.Admin("/api/v1/proxies")["proxies"][0];
  CHECK(proxy["types"]["cds"]["versionAcked"] == cds_version);

  // The config dump shows the endpoint the client now holds.
  HttpResponse dump = HttpGet("127.0.0.1", mesh.admin_port,
                              "/api/v1/proxies/" + proxy["id"].get<std::string>() + "/config");
  REQUIRE(dump.status == 200);
  CHECK(dump.body.find(absl::StrCat("\"port_value\": ", mesh.port_b)) != std::string::npos);
  CHECK(dump.body.find("greeter.default.svc.cluster.local:50051") != std::string::npos);

  client->Stop();
  REQUIRE(WaitFor([&] { return mesh.Admin("/api/v1/proxies")["proxies"].empty(); }, absl::Seconds(10)));
}

TEST_CASE("a broken manifest is reported and traffic keeps flowing", "[e2e][xds]") {
  Mesh mesh;
  SubprocessPtr client = mesh.StartClient(0, "client.log");
  REQUIRE(WaitFor([&] { return !GreeterBackends(client->Log()).empty(); }, absl::Seconds(20)));

  // A second file with a YAML syntax error, and the Service in the working
  // file broken in one field: both are reported; the last good Service stays.
  WriteFile(mesh.config_dir + "/broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [\n");
  WriteFile(mesh.config_dir + "/greeter.yaml",
            absl::StrReplaceAll(Manifest(mesh.port_a), {{"port: 50051", "port: \"fifty\""}}));
  REQUIRE(WaitFor([&] { return mesh.Admin("/api/v1/policies")["errors"].size() >= 2; },
                  absl::Seconds(10)));
  json errors = mesh.Admin("/api/v1/policies")["errors"];
  bool syntax_reported = false, field_reported = false;
  for (const auto& e : errors) {
    std::string source = e["source"];
    if (absl::StrContains(source, "broken.yaml")) syntax_reported = true;
    if (absl::StrContains(source, "greeter.yaml") && e["field"] == "spec.ports[0].port") {
      field_reported = true;
    }
  }
  CHECK(syntax_reported);
  CHECK(field_reported);
  HttpResponse metrics = HttpGet("127.0.0.1", mesh.admin_port, "/metrics");
  CHECK(absl::StrContains(metrics.body, "weft_config_errors 2"));
  CHECK(absl::StrContains(mesh.weftd->Log(), "broken.yaml"));

  // Traffic still flows to the last good endpoint (backend-a).
  size_t before = GreeterBackends(client->Log()).size();
  REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).size() >= before + 5; }, absl::Seconds(10)));
  auto backends = GreeterBackends(client->Log());
  for (size_t i = before; i < backends.size(); ++i) CHECK(backends[i] == "backend-a");
  CHECK(client->Log().find("UNAVAILABLE") == std::string::npos);

  // Fixing the files clears the errors and applies the new endpoint.
  WriteFile(mesh.config_dir + "/broken.yaml", "# fixed\n");
  WriteFile(mesh.config_dir + "/greeter.yaml", Manifest(mesh.port_b));
  REQUIRE(WaitFor([&] { return mesh.Admin("/api/v1/policies")["errors"].empty(); }, absl::Seconds(10)));
  REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).back() == "backend-b"; }, absl::Seconds(20)));
}

// A delta ADS client on weftd's plaintext port, subscribed to every cluster's
// endpoints; remembers the endpoint ports it was sent.
class DeltaWatcher {
 public:
  DeltaWatcher(int port, int id) {
    stub_ = envoy::service::discovery::v3::AggregatedDiscoveryService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    stream_ = stub_->DeltaAggregatedResources(&ctx_);
    envoy::service::discovery::v3::DeltaDiscoveryRequest req;
    req.mutable_node()->set_id(absl::StrCat("delta-watcher-", id));
    req.set_type_url("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
    req.add_resource_names_subscribe("*");
    stream_->Write(req);
    reader_ = std::thread([this] {
      envoy::service::discovery::v3::DeltaDiscoveryResponse resp;
      while (stream_->Read(&resp)) {
        for (const auto& r : resp.resources()) {
          envoy::config::endpoint::v3::ClusterLoadAssignment cla;
          if (r.resource().UnpackTo(&cla) && cla.endpoints_size() > 0 && cla.endpoints(0).lb_endpoints_size() > 0) {
            std::lock_guard<std::mutex> lock(mu_);
            ports_.insert(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value());
          }
        }
        envoy::service::discovery::v3::DeltaDiscoveryRequest ack;
        ack.set_type_url(resp.type_url());
        ack.set_response_nonce(resp.nonce());
        stream_->Write(ack);
      }
    });
  }
  ~DeltaWatcher() {
    ctx_.TryCancel();
    reader_.join();
  }
  bool Saw(uint32_t port) {
    std::lock_guard<std::mutex> lock(mu_);
    return ports_.count(port) > 0;
  }

 private:
  std::unique_ptr<envoy::service::discovery::v3::AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                           envoy::service::discovery::v3::DeltaDiscoveryResponse>>
      stream_;
  std::thread reader_;
  std::mutex mu_;
  std::set<uint32_t> ports_;
};

TEST_CASE("gRPC's SotW xDS client keeps routing across endpoint moves while delta clients share weftd",
          "[e2e][xds][delta]") {
  Mesh mesh;
  std::vector<std::unique_ptr<DeltaWatcher>> watchers;
  for (int i = 0; i < 3; ++i) watchers.push_back(std::make_unique<DeltaWatcher>(mesh.xds_port, i));
  SubprocessPtr client = mesh.StartClient(0, "client.log");
  REQUIRE(WaitFor([&] { return !GreeterBackends(client->Log()).empty(); }, absl::Seconds(20)));
  for (auto& w : watchers) REQUIRE(WaitFor([&] { return w->Saw(mesh.port_a); }, absl::Seconds(10)));

  // Move the endpoint to b, back to a, and to b again.
  for (int port : {mesh.port_b, mesh.port_a, mesh.port_b}) {
    const std::string backend = port == mesh.port_a ? "backend-a" : "backend-b";
    WriteFile(mesh.config_dir + "/greeter.yaml", Manifest(port));
    REQUIRE(WaitFor([&] { return GreeterBackends(client->Log()).back() == backend; }, absl::Seconds(20)));
    for (auto& w : watchers) REQUIRE(WaitFor([&] { return w->Saw(port); }, absl::Seconds(10)));
  }
  // Every RPC succeeded: the SotW client never lost its route.
  CHECK(client->Log().find(": UNAVAILABLE") == std::string::npos);
  CHECK(client->Log().find(": DEADLINE_EXCEEDED") == std::string::npos);
  json proxies = mesh.Admin("/api/v1/proxies")["proxies"];
  int delta = 0, sotw = 0;
  for (const auto& p : proxies) (p["protocol"] == "delta" ? delta : sotw)++;
  CHECK(delta == 3);
  CHECK(sotw == 1);
}

TEST_CASE("with --admin-token-file the admin API wants the bearer token (health stays open)", "[e2e][admin]") {
  std::string dir = MakeTempDir("weft-e2e-admin-");
  REQUIRE(mkdir((dir + "/config").c_str(), 0755) == 0);
  WriteFile(dir + "/token", "s3cret-admin-token\n");
  int admin_port = PickFreePort();
  Subprocess weftd({BinaryPath("weftd"), "--config-dir=" + dir + "/config", "--ca-dir=" + dir + "/ca",
                    absl::StrCat("--xds-addr=127.0.0.1:", PickFreePort()),
                    absl::StrCat("--admin-addr=127.0.0.1:", admin_port), "--admin-token-file=" + dir + "/token"},
                   {}, dir + "/weftd.log");
  REQUIRE(weftd.Start().ok());
  REQUIRE(WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/healthz").status == 200; }, absl::Seconds(15)));
  CHECK(HttpGet("127.0.0.1", admin_port, "/readyz").status == 200);
  HttpResponse denied = HttpGet("127.0.0.1", admin_port, "/api/v1/proxies");
  CHECK(denied.status == 401);
  CHECK(absl::StrContains(denied.body, "\"error\""));
  CHECK(HttpGet("127.0.0.1", admin_port, "/metrics").status == 401);
  httplib::Client client("127.0.0.1", admin_port);
  auto wrong = client.Get("/api/v1/proxies", {{"Authorization", "Bearer s3cret-admin-tokeX"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto allowed = client.Get("/api/v1/proxies", {{"Authorization", "Bearer s3cret-admin-token"}});
  REQUIRE(allowed);
  CHECK(allowed->status == 200);
  weftd.Stop();
}

TEST_CASE("weftd refuses bad flags and unreadable directories with one clear line", "[e2e][flags]") {
  std::string dir = MakeTempDir("weft-e2e-flags-");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"--no-such-flag=1"}, "no_such_flag"},
      {{"--config-dir=" + dir + "/missing"}, "--config-dir"},
      {{"--config-dir=" + dir, "--admin-addr=0.0.0.0:0"}, "--admin-token-file"},
      {{"--config-dir=" + dir, "--registry=consul"}, "--registry"},
      {{"--config-dir=" + dir, "--xds-plaintext-addr=nonsense"}, "--xds-plaintext-addr"},
      {{"--config-dir=" + dir, "--push-window=-1"}, "--push-window"},
      {{"--config-dir=" + dir, "--xds-memory-quota-mb=-5"}, "--xds-memory-quota-mb"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> argv = {BinaryPath("weftd"), "--ca-dir=" + dir + "/ca",
                                     absl::StrCat("--xds-addr=127.0.0.1:", PickFreePort())};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    Subprocess p(argv, {}, dir + "/case" + std::to_string(i++) + ".log");
    REQUIRE(p.Start().ok());
    REQUIRE(p.Wait(absl::Seconds(10)));
    INFO(p.Log());
    CHECK(p.ExitCode().value_or(0) != 0);
    CHECK(absl::StrContains(p.Log(), c.expect));
    std::string log = p.Log();
    while (!log.empty() && log.back() == '\n') log.pop_back();
    CHECK(std::count(log.begin(), log.end(), '\n') == 0);  // one line
  }
}

}  // namespace
}  // namespace weft::e2e
