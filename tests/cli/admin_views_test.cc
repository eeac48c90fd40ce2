#include "cli/admin_views.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace weft::cli {
namespace {

using Row = std::vector<std::string>;

// The table at the start of `out` (up to the first empty line), each line
// split into its cells (columns are two or more spaces apart).
std::vector<Row> TableRows(const std::string& out) {
  std::vector<Row> rows;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(start, end - start);
    start = end + 1;
    if (line.empty()) break;
    Row row;
    size_t pos = 0;
    while (pos < line.size()) {
      size_t gap = line.find("  ", pos);
      if (gap == std::string::npos) gap = line.size();
      row.push_back(line.substr(pos, gap - pos));
      pos = line.find_first_not_of(' ', gap);
      if (pos == std::string::npos) break;
    }
    rows.push_back(row);
  }
  return rows;
}

// As weftd renders GET /api/v1/proxies (server/admin_server.cc): one proxy in
// sync, one whose listeners were NACKED.
constexpr char kProxies[] = R"({
  "proxies": [
    {
      "id": "sidecar~127.0.0.2~a-0.shop~shop.svc.cluster.local",
      "identity": {"kind": "sidecar", "namespace": "shop", "serviceAccount": "a"},
      "status": "SYNCED",
      "types": {
        "cds": {"status": "SYNCED", "versionAcked": "52429c974ae0ba0d", "versionSent": "52429c974ae0ba0d"},
        "lds": {"status": "SYNCED", "versionAcked": "10f7fee26f95c872", "versionSent": "10f7fee26f95c872"}
      }
    },
    {
      "id": "sidecar~127.0.0.3~b-0.shop~shop.svc.cluster.local",
      "identity": {"kind": "sidecar", "namespace": "shop", "serviceAccount": "b"},
      "status": "NACKED",
      "types": {
        "cds": {"status": "STALE", "versionAcked": "", "versionSent": "aaaaaaaabbbbbbbb"},
        "lds": {
          "status": "NACKED", "versionAcked": "10f7fee26f95c872", "versionSent": "deadbeef00000000",
          "nack": {
            "message": "listener inbound: unknown filter envoy.filters.http.bogus",
            "version": "deadbeef00000000",
            "resources": ["inbound"],
            "sources": [{"resource": "inbound", "sources": ["config/routes.yaml#1", "config/authz.yaml#0"]}]
          }
        }
      }
    }
  ]
})";

TEST_CASE("proxies: a row per proxy with each type's state and versions", "[cli]") {
  auto out = RenderProxies(kProxies, OutputFormat::kTable);
  REQUIRE(out.ok());
  INFO(*out);
  auto rows = TableRows(*out);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == Row{"PROXY", "IDENTITY", "KIND", "CDS", "LDS", "EDS", "RDS", "SDS"});
  CHECK(rows[1] == Row{"sidecar~127.0.0.2~a-0.shop~shop.svc.cluster.local", "shop/a", "sidecar",
                       "SYNCED 52429c97", "SYNCED 10f7fee2", "-", "-", "-"});
  // Never acknowledged: "-" and what was sent.
  CHECK(rows[2] == Row{"sidecar~127.0.0.3~b-0.shop~shop.svc.cluster.local", "shop/b", "sidecar",
                       "STALE - (sent aaaaaaaa)", "NACKED 10f7fee2 (sent deadbeef)", "-", "-", "-"});
}

TEST_CASE("proxies: a NACK's message and the rejected resources' manifests are printed under the table",
          "[cli]") {
  auto out = RenderProxies(kProxies, OutputFormat::kTable);
  REQUIRE(out.ok());
  INFO(*out);
  const size_t nacks = out->find("\nNACKs");
  REQUIRE(nacks != std::string::npos);
  CHECK(out->find("sidecar~127.0.0.3~b-0.shop~shop.svc.cluster.local: LDS version deadbeef00000000 rejected: "
                  "listener inbound: unknown filter envoy.filters.http.bogus",
                  nacks) != std::string::npos);
  CHECK(out->find("  inbound (from config/routes.yaml#1, config/authz.yaml#0)", nacks) != std::string::npos);
  // The synced proxy has no NACK.
  CHECK(out->find("a-0.shop~shop.svc.cluster.local:", nacks) == std::string::npos);
}

TEST_CASE("proxies: missing and mistyped fields print as -, never crash", "[cli]") {
  auto out = RenderProxies(R"({"proxies": [{"types": {"lds": {"status": 7, "nack": "not an object"}}},
                                           {"id": "p2", "identity": "x", "types": []}, 42, null]})",
                           OutputFormat::kTable);
  REQUIRE(out.ok());
  INFO(*out);
  auto rows = TableRows(*out);
  REQUIRE(rows.size() == 5);
  CHECK(rows[1] == Row{"-", "-", "-", "-", "7 -", "-", "-", "-"});
  CHECK(rows[2] == Row{"p2", "-", "-", "-", "-", "-", "-", "-"});
  CHECK(rows[3] == Row{"-", "-", "-", "-", "-", "-", "-", "-"});
  // A NACKED type without details still names the proxy and type.
  auto nacked = RenderProxies(R"({"proxies": [{"id": "p", "types": {"rds": {"status": "NACKED"}}}]})",
                              OutputFormat::kTable);
  REQUIRE(nacked.ok());
  CHECK(nacked->find("p: RDS version - rejected: -") != std::string::npos);

  CHECK(RenderProxies(R"({"proxies": []})", OutputFormat::kTable).value() ==
        "No proxies are connected to weftd.\n");
  CHECK(RenderProxies(R"([1, 2])", OutputFormat::kTable).value() == "No proxies are connected to weftd.\n");
  CHECK(RenderProxies("{}", OutputFormat::kTable).ok());
  auto bad = RenderProxies("<html>oops</html>", OutputFormat::kTable);
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("not JSON: <html>oops</html>") != std::string::npos);
}

TEST_CASE("--output=json prints the server's JSON, pretty and in its order", "[cli]") {
  auto out = RenderProxies(R"({"proxies":[{"id":"p","connectedAt":"t"}]})", OutputFormat::kJson);
  REQUIRE(out.ok());
  CHECK(*out ==
        "{\n  \"proxies\": [\n    {\n      \"id\": \"p\",\n      \"connectedAt\": \"t\"\n    }\n  ]\n}\n");
  CHECK(nlohmann::json::parse(*RenderPolicies(R"({"policies": []})", OutputFormat::kJson)).is_object());
  // Invalid UTF-8 from the server is an error, not an exception.
  CHECK_FALSE(RenderServices("{\"services\": [{\"name\": \"\xff\"}]}", OutputFormat::kJson).ok());
  CHECK_FALSE(RenderServices("{\"services\": [{\"name\": \"\xff\"}]}", OutputFormat::kTable).ok());
}

TEST_CASE("services: a row per port with its endpoints", "[cli]") {
  auto out = RenderServices(R"({"meshVersion": 3, "services": [
    {"name": "orders", "namespace": "shop", "host": "orders.shop.svc.cluster.local", "clusterIP": "",
     "source": "config/mesh.yaml#1",
     "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                "endpoints": [{"address": "127.0.0.1", "port": 18081}, {"address": "127.0.0.2", "port": 18081},
                              {"address": "127.0.0.3", "port": 18081}, {"address": "127.0.0.4", "port": 18081}]},
               {"name": "", "port": 9090, "protocol": "TCP", "endpoints": []}]},
    {"name": "bare"}]})",
                            OutputFormat::kTable);
  REQUIRE(out.ok());
  INFO(*out);
  auto rows = TableRows(*out);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == Row{"NAMESPACE", "NAME", "HOST", "CLUSTER-IP", "PORT", "ENDPOINTS", "SOURCE"});
  CHECK(rows[1] == Row{"shop", "orders", "orders.shop.svc.cluster.local", "-", "http:80/TCP",
                       "127.0.0.1:18081,127.0.0.2:18081,127.0.0.3:18081 (+1 more)", "config/mesh.yaml#1"});
  CHECK(rows[2] == Row{"shop", "orders", "orders.shop.svc.cluster.local", "-", "9090/TCP", "<none>",
                       "config/mesh.yaml#1"});
  CHECK(rows[3] == Row{"-", "bare", "-", "-", "-", "-", "-"});
  CHECK(RenderServices(R"({"services": []})", OutputFormat::kTable).value() == "No services.\n");
}

TEST_CASE("policies: an invalid policy's errors name the file and the field", "[cli]") {
  auto out = RenderPolicies(R"({"meshVersion": 2, "policies": [
    {"kind": "RateLimitPolicy", "namespace": "shop", "name": "ok", "source": "config/limits.yaml#0",
     "status": "Accepted", "warnings": [{"source": "config/limits.yaml#0", "kind": "RateLimitPolicy",
       "namespace": "shop", "name": "ok", "field": "spec.local.burst", "reason": "larger than requests"}]},
    {"kind": "TrafficPolicy", "namespace": "shop", "name": "orders-retries", "source": "config/bad.yaml#0",
     "status": "Invalid", "errors": [{"source": "config/bad.yaml#0", "kind": "TrafficPolicy", "namespace": "shop",
       "name": "orders-retries", "field": "spec.retries.attempts", "reason": "must be between 0 and 10"}]}],
    "errors": [{"source": "config/bad.yaml#0", "kind": "TrafficPolicy", "namespace": "shop",
       "name": "orders-retries", "field": "spec.retries.attempts", "reason": "must be between 0 and 10"},
      {"source": "config/broken.yaml#2", "kind": "Service", "field": "", "reason": "not a YAML mapping"}]})",
                            OutputFormat::kTable);
  REQUIRE(out.ok());
  INFO(*out);
  auto rows = TableRows(*out);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == Row{"NAMESPACE", "KIND", "NAME", "STATUS", "SOURCE"});
  CHECK(rows[1] == Row{"shop", "RateLimitPolicy", "ok", "Accepted", "config/limits.yaml#0"});
  CHECK(rows[2] == Row{"shop", "TrafficPolicy", "orders-retries", "Invalid", "config/bad.yaml#0"});
  const std::string error_line =
      "  error: config/bad.yaml#0: TrafficPolicy shop/orders-retries: spec.retries.attempts: must be between "
      "0 "
      "and 10\n";
  CHECK(out->find(error_line) != std::string::npos);
  CHECK(out->find("  warning: config/limits.yaml#0: RateLimitPolicy shop/ok: spec.local.burst: larger than "
                  "requests\n") != std::string::npos);
  // The top-level errors repeat the policy's; only the others are listed again.
  CHECK(out->find("spec.retries.attempts", out->find(error_line) + error_line.size()) == std::string::npos);
  CHECK(out->find("Manifest errors") != std::string::npos);
  CHECK(out->find("  config/broken.yaml#2: Service -: not a YAML mapping\n") != std::string::npos);

  auto none = RenderPolicies(R"({"policies": [], "errors": []})", OutputFormat::kTable);
  CHECK(none.value() == "No policies.\n");
}

TEST_CASE("certificates: the CA's certificates and the issued ones", "[cli]") {
  auto out = RenderCertificates(R"({"mode": "generated",
    "roots": [{"subject": "CN=Root", "serial": "01", "notAfter": "2036-01-01T00:00:00Z", "expiresInSeconds": 315360000,
               "signing": true}, {"subject": "CN=Old", "expiresInSeconds": -5}],
    "intermediate": {"subject": "CN=Inter", "serial": "02", "expiresInSeconds": 7200},
    "rotation": {"phase": "draining", "since": "2026-01-01T00:00:00Z", "retireOldRootAfter": "2026-01-02T00:00:00Z"},
    "issuedTotal": 5,
    "issued": [{"identity": "spiffe://cluster.local/ns/shop/sa/a", "serial": "03", "authenticatedBy": "token-file"}]})",
                                OutputFormat::kTable);
  REQUIRE(out.ok());
  INFO(*out);
  CHECK(out->find("CA: generated, rotation draining since 2026-01-01T00:00:00Z, old root retired after "
                  "2026-01-02T00:00:00Z, 5 certificates issued") == 0);
  auto authorities = TableRows(out->substr(out->find("\n\n") + 2));
  REQUIRE(authorities.size() == 4);
  CHECK(authorities[1] == Row{"root (signing)", "CN=Root", "01", "2036-01-01T00:00:00Z", "3650d"});
  CHECK(authorities[2] == Row{"root", "CN=Old", "-", "-", "expired"});
  CHECK(authorities[3] == Row{"intermediate", "CN=Inter", "02", "-", "2h"});
  auto issued = TableRows(out->substr(out->rfind("ISSUED TO")));
  REQUIRE(issued.size() == 2);
  CHECK(issued[1] == Row{"spiffe://cluster.local/ns/shop/sa/a", "03", "token-file", "-", "-"});
  auto empty = RenderCertificates("{}", OutputFormat::kTable);
  REQUIRE(empty.ok());
  CHECK(empty->find("CA: -, rotation - since -, - certificates issued") == 0);
  CHECK(empty->find("No certificates issued recently.") != std::string::npos);
}

TEST_CASE("proxy-config: the whole dump, or one section of it", "[cli]") {
  constexpr char kDump[] = R"({"configs": [
    {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": []},
    {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
     "dynamic_listeners": [{"name": "inbound"}]}]})";
  auto all = RenderConfigDump(kDump, "");
  REQUIRE(all.ok());
  CHECK(nlohmann::json::parse(*all)["configs"].size() == 2);
  auto listeners = RenderConfigDump(kDump, "listeners");
  REQUIRE(listeners.ok());
  CHECK(nlohmann::json::parse(*listeners)["dynamic_listeners"][0]["name"] == "inbound");
  auto clusters = RenderConfigDump(kDump, "clusters");
  REQUIRE(clusters.ok());
  CHECK(clusters->find("ClustersConfigDump") != std::string::npos);
  auto endpoints = RenderConfigDump(kDump, "endpoints");  // a section this dump lacks
  CHECK(endpoints.status().code() == absl::StatusCode::kNotFound);
  CHECK(IsConfigSection("secrets"));
  CHECK(RenderConfigDump(R"({"configs": "x"})", "routes").status().code() == absl::StatusCode::kNotFound);
  CHECK_FALSE(RenderConfigDump(kDump, "bogus").ok());
  CHECK(IsConfigSection("endpoints"));
  CHECK_FALSE(IsConfigSection("lds"));
}

TEST_CASE("status: healthy and ready, or why not", "[cli]") {
  CHECK(RenderStatus(200, R"({"status": "ok"})", 200, R"({"status": "ready", "meshVersion": 4})",
                     OutputFormat::kTable) == "healthy: yes\nready:   yes (mesh version 4)\n");
  CHECK(RenderStatus(200, R"({"status": "ok"})", 503,
                     R"({"status": "not ready", "reason": "no mesh snapshot yet"})",
                     OutputFormat::kTable) == "healthy: yes\nready:   no (HTTP 503: no mesh snapshot yet)\n");
  CHECK(RenderStatus(500, "", 503, "garbage", OutputFormat::kTable) ==
        "healthy: no (HTTP 500)\nready:   no (HTTP 503: -)\n");
  auto json = nlohmann::json::parse(RenderStatus(200, R"({"status": "ok"})", 503, "x", OutputFormat::kJson));
  CHECK(json["healthz"]["httpStatus"] == 200);
  CHECK(json["healthz"]["body"]["status"] == "ok");
  CHECK(json["readyz"]["httpStatus"] == 503);
  CHECK(json["readyz"]["body"].is_null());
}

TEST_CASE("an error body's message, else the body on one line", "[cli]") {
  CHECK(ServerErrorMessage(R"({"error": "no connected proxy with id x"})") == "no connected proxy with id x");
  CHECK(ServerErrorMessage("  Bad\nGateway \n") == "Bad Gateway");
  CHECK(ServerErrorMessage(R"({"error": 5})") == R"({"error": 5})");
  CHECK(ServerErrorMessage("") == "(empty body)");
  CHECK(ServerErrorMessage(std::string(500, 'x')).size() == 203);
}

TEST_CASE("proxy IDs are escaped as one path segment", "[cli]") {
  CHECK(EscapePathSegment("sidecar~127.0.0.1~a-0.shop~shop.svc.cluster.local") ==
        "sidecar~127.0.0.1~a-0.shop~shop.svc.cluster.local");
  CHECK(EscapePathSegment("a/b c?d#e%") == "a%2Fb%20c%3Fd%23e%25");
}

}  // namespace
}  // namespace weft::cli
