// weftctl end to end: the built binary, run as a user runs it, against a real
// weftd in file mode (a namespace, a Service with one Workload, a broken
// TrafficPolicy) with a real weft-proxy connected, and against a second weftd
// that requires an admin token. What a user relies on: the proxy shows as
// SYNCED, its config dump holds listeners, the service and the policy's error
// (file and field) are shown, --output=json is JSON, and every failure
// (no or wrong token, nothing listening, bad usage) exits non-zero saying why.
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

using nlohmann::json;

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs weftctl with `args`; its output goes to a log file in `dir`.
Run Weftctl(const std::string& dir, const std::vector<std::string>& args,
            std::map<std::string, std::string> env = {}) {
  static int runs = 0;
  std::vector<std::string> argv = {BinaryPath("weftctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv, std::move(env), absl::StrCat(dir, "/weftctl-", ++runs, ".log"));
  Run run;
  if (!p.Start().ok() || !p.Wait(absl::Seconds(15))) return run;
  run.exit_code = p.ExitCode().value_or(-1);
  run.output = p.Log();
  return run;
}

std::string Admin(int port) { return absl::StrCat("--admin-addr=127.0.0.1:", port); }

// The table row (a line of `output`) that contains `needle`; "" when none.
std::string RowWith(const std::string& output, const std::string& needle) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::StrContains(line, needle)) return std::string(line);
  }
  return "";
}

constexpr char kNamespace[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
)";

// attempts must be 0..10: weftd reports this file and field.
constexpr char kBadPolicy[] = R"(apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: orders-retries, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: orders}]
  retries: {attempts: 99}
)";

TEST_CASE("weftctl against a real weftd and weft-proxy", "[e2e][weftctl]") {
  REQUIRE_FALSE(BinaryPath("weftctl").empty());
  SidecarMesh mesh("weft-e2e-weftctl-");
  SidecarWorkload orders{"orders", "shop", "127.0.12.2", "orders"};
  mesh.Apply("mesh.yaml", std::string(kNamespace) + ServiceWithWorkloadManifest(orders));
  mesh.Apply("bad-policy.yaml", kBadPolicy);
  REQUIRE(mesh.StartWeftd({&orders}).ok());
  absl::Status started = mesh.StartWorkload(orders, {});
  INFO("logs in " << mesh.dir);
  REQUIRE(started.ok());
  const std::string admin = Admin(mesh.admin_port);

  {  // status: healthy and ready
    Run run = Weftctl(mesh.dir, {"status", admin});
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(absl::StrContains(run.output, "healthy: yes"));
    CHECK(absl::StrContains(run.output, "ready:   yes"));
    // The address from $WEFT_ADMIN_ADDR when there is no flag.
    Run from_env =
        Weftctl(mesh.dir, {"status"}, {{"WEFT_ADMIN_ADDR", absl::StrCat("127.0.0.1:", mesh.admin_port)}});
    CHECK(from_env.exit_code == 0);
  }

  {  // proxies, proxy-config: the sidecar is SYNCED and holds listeners
    // The sidecar's id, from the JSON output (which must parse).
    std::string id;
    REQUIRE(WaitFor(
        [&] {
          Run run = Weftctl(mesh.dir, {"proxies", "--output=json", admin});
          json parsed = json::parse(run.output, nullptr, false);
          if (run.exit_code != 0 || parsed.is_discarded()) return false;
          for (const auto& p : parsed["proxies"]) {
            if (p["identity"]["serviceAccount"] == "orders" && p["status"] == "SYNCED") {
              id = p["id"].get<std::string>();
              return true;
            }
          }
          return false;
        },
        absl::Seconds(10), absl::Milliseconds(200)));

    Run table = Weftctl(mesh.dir, {"proxies", admin});
    INFO(table.output);
    CHECK(table.exit_code == 0);
    CHECK(absl::StartsWith(table.output, "PROXY"));
    const std::string row = RowWith(table.output, id);
    REQUIRE_FALSE(row.empty());
    CHECK(absl::StrContains(row, "shop/orders"));
    // One SYNCED cell per resource type: CDS LDS EDS RDS SDS.
    std::vector<std::string> cells = absl::StrSplit(row, "  ", absl::SkipWhitespace());
    int synced = 0;
    for (const auto& cell : cells)
      synced += absl::StartsWith(absl::StripLeadingAsciiWhitespace(cell), "SYNCED");
    CHECK(synced == 5);
    CHECK_FALSE(absl::StrContains(table.output, "NACK"));

    Run dump = Weftctl(mesh.dir, {admin, "proxy-config", id});
    INFO(dump.output);
    CHECK(dump.exit_code == 0);
    json config = json::parse(dump.output, nullptr, false);
    REQUIRE_FALSE(config.is_discarded());
    bool listener = false;
    for (const auto& c : config["configs"]) {
      if (absl::EndsWith(c.value("@type", ""), "ListenersConfigDump")) {
        listener = c.contains("dynamic_listeners") && !c["dynamic_listeners"].empty();
      }
    }
    CHECK(listener);

    Run listeners = Weftctl(mesh.dir, {admin, "proxy-config", "--type=listeners", id});
    json section = json::parse(listeners.output, nullptr, false);
    REQUIRE_FALSE(section.is_discarded());
    CHECK(section.value("@type", "") == "type.googleapis.com/envoy.admin.v3.ListenersConfigDump");
    CHECK(section["dynamic_listeners"][0]["active_state"]["listener"].contains("name"));

    // The trust bundle the sidecar acknowledged over SDS, and no key.
    Run secrets = Weftctl(mesh.dir, {admin, "proxy-config", "--type=secrets", id});
    INFO(secrets.output);
    json sds = json::parse(secrets.output, nullptr, false);
    REQUIRE_FALSE(sds.is_discarded());
    CHECK(sds.value("@type", "") == "type.googleapis.com/envoy.admin.v3.SecretsConfigDump");
    bool rootca = false;
    for (const json& s : sds.value("dynamic_active_secrets", json::array())) {
      if (s.value("name", "") != "ROOTCA") continue;
      rootca = absl::StrContains(s["secret"]["validation_context"]["trusted_ca"].value("inline_string", ""),
                                 "BEGIN CERTIFICATE");
    }
    CHECK(rootca);
    CHECK_FALSE(absl::StrContains(secrets.output, "PRIVATE KEY"));

    Run unknown = Weftctl(mesh.dir, {admin, "proxy-config", "no/such~proxy"});
    CHECK(unknown.exit_code == 1);
    CHECK(absl::StrContains(unknown.output, "HTTP 404"));
    CHECK(absl::StrContains(unknown.output, "no connected proxy with id no/such~proxy"));
    // The id reaches weftd as it was typed: escaped once, decoded once.
    Run percent = Weftctl(mesh.dir, {admin, "proxy-config", "odd%41id"});
    CHECK(percent.exit_code == 1);
    CHECK(absl::StrContains(percent.output, "no connected proxy with id odd%41id"));
  }

  {  // services and policies, as tables and as JSON
    Run services = Weftctl(mesh.dir, {"services", admin});
    INFO(services.output);
    CHECK(services.exit_code == 0);
    const std::string row = RowWith(services.output, "orders.shop.svc.cluster.local");
    CHECK(absl::StrContains(row, "shop"));
    CHECK(absl::StrContains(row, absl::StrCat(orders.ip, ":", orders.inbound_port)));

    Run policies = Weftctl(mesh.dir, {"policies", admin});
    INFO(policies.output);
    CHECK(policies.exit_code == 0);
    CHECK(absl::StrContains(RowWith(policies.output, "orders-retries"), "Invalid"));
    const std::string error = RowWith(policies.output, "error:");
    CHECK(absl::StrContains(error, "bad-policy.yaml"));
    CHECK(absl::StrContains(error, "spec.retries.attempts"));

    for (const char* command : {"services", "policies", "certificates", "status"}) {
      Run json_run = Weftctl(mesh.dir, {command, "--output=json", admin});
      INFO(command << ": " << json_run.output);
      CHECK(json_run.exit_code == 0);
      CHECK_FALSE(json::parse(json_run.output, nullptr, false).is_discarded());
    }
    Run certificates = Weftctl(mesh.dir, {"certificates", admin});
    CHECK(absl::StrContains(certificates.output, "spiffe://cluster.local/ns/shop/sa/orders"));
  }

  {  // nothing listening: exit 1 naming the address
    const int port = PickFreePort();
    Run run = Weftctl(mesh.dir, {"proxies", Admin(port), "--timeout=2s"});
    INFO(run.output);
    CHECK(run.exit_code == 1);
    CHECK(absl::StrContains(run.output, absl::StrCat("127.0.0.1:", port)));
  }

  {  // help asked for: the usage on stdout, exit 0
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"help"}, {"--help"}}) {
      Subprocess sh({"/bin/sh", "-c", BinaryPath("weftctl") + " " + args[0] + " 2>/dev/null"}, {},
                    mesh.dir + "/help.log");
      REQUIRE(sh.Start().ok());
      REQUIRE(sh.Wait(absl::Seconds(10)));
      CHECK(sh.ExitCode() == 0);
      CHECK(absl::StrContains(sh.Log(), "Usage: weftctl"));
    }
  }

  {  // bad usage: exit 2 with the usage on stderr only
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"bogus"},
                                               {},
                                               {"proxy-config", "x", "--type=keys"},
                                               {"proxies", "--output=yaml"},
                                               {"proxy-config"},
                                               {"--nope", "status"}}) {
      Run run = Weftctl(mesh.dir, args);
      INFO(absl::StrJoin(args, " ") << ": " << run.output);
      CHECK(run.exit_code == 2);
      CHECK(absl::StrContains(run.output, "Usage: weftctl"));
    }
    // Nothing on stdout.
    Subprocess sh({"/bin/sh", "-c", BinaryPath("weftctl") + " bogus 2>/dev/null"}, {},
                  mesh.dir + "/usage.log");
    REQUIRE(sh.Start().ok());
    REQUIRE(sh.Wait(absl::Seconds(10)));
    CHECK(sh.ExitCode() == 2);
    CHECK(sh.Log().empty());
  }
}

TEST_CASE("weftctl against a weftd that requires an admin token", "[e2e][weftctl]") {
  REQUIRE_FALSE(BinaryPath("weftctl").empty());
  SidecarMesh mesh("weft-e2e-weftctl-token-");
  SidecarWorkload orders{"orders", "shop", "127.0.12.3", "orders"};
  const std::string token_file = mesh.dir + "/admin.token";
  WriteFile(token_file, "admin-s3cret \r\n");  // trailing blanks are not part of it
  const std::string wrong_file = mesh.dir + "/wrong.token";
  WriteFile(wrong_file, "guess\n");
  mesh.weftd_flags = {"--admin-token-file=" + token_file};
  mesh.Apply("mesh.yaml", std::string(kNamespace) + ServiceWithWorkloadManifest(orders));
  REQUIRE(mesh.StartWeftd({&orders}).ok());
  INFO("logs in " << mesh.dir);
  const std::string admin = Admin(mesh.admin_port);

  Run without = Weftctl(mesh.dir, {"services", admin});
  INFO(without.output);
  CHECK(without.exit_code == 1);
  CHECK(absl::StrContains(without.output, "HTTP 401"));
  CHECK(absl::StrContains(without.output, "no admin token was given"));
  CHECK(absl::StrContains(without.output, "--token-file"));

  Run wrong = Weftctl(mesh.dir, {"services", admin, "--token-file=" + wrong_file});
  INFO(wrong.output);
  CHECK(wrong.exit_code == 1);
  CHECK(absl::StrContains(wrong.output, "the token in " + wrong_file + " is wrong"));

  Run with = Weftctl(mesh.dir, {"services", admin, "--token-file", token_file});
  INFO(with.output);
  CHECK(with.exit_code == 0);
  CHECK(absl::StrContains(RowWith(with.output, "orders.shop.svc.cluster.local"), "orders"));

  // /healthz and /readyz need no token.
  CHECK(Weftctl(mesh.dir, {"status", admin}).exit_code == 0);
}

}  // namespace
}  // namespace weft::e2e
