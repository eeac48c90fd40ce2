// e2e: greeter-client against greeter-server over a direct ipv4: target, no
// control plane. Checks the example binaries and the harness itself before
// the xDS tests build on both.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {
namespace {

std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, prefix)) lines.emplace_back(line);
  }
  return lines;
}

TEST_CASE("greeter-client reaches greeter-server over a direct target", "[e2e]") {
  const std::string server_bin = BinaryPath("greeter-server");
  const std::string client_bin = BinaryPath("greeter-client");
  REQUIRE(!server_bin.empty());
  REQUIRE(!client_bin.empty());
  const std::string dir = MakeTempDir("e2e_greeter_direct_");
  const int port = PickFreePort();

  Subprocess server({server_bin, absl::StrCat("--addr=127.0.0.1:", port), "--name=backend-a"}, {},
                    dir + "/server.log");
  REQUIRE(server.Start().ok());
  INFO("server log: " << server.log_path());
  REQUIRE(WaitForTcpPort("127.0.0.1", port, absl::Seconds(10)));
  REQUIRE(WaitFor([&] { return absl::StrContains(server.Log(), "listening on"); }, absl::Seconds(5)));

  Subprocess client(
      {client_bin, absl::StrCat("--target=ipv4:127.0.0.1:", port), "--count=3", "--interval=10ms"}, {},
      dir + "/client.log");
  REQUIRE(client.Start().ok());
  REQUIRE(client.Wait(absl::Seconds(30)));
  const std::string out = client.Log();
  INFO("client output:\n" << out);
  CHECK(client.ExitCode() == 0);

  const std::vector<std::string> ok_lines = LinesStartingWith(out, "rpc ");
  REQUIRE(ok_lines.size() == 3);
  for (const std::string& line : ok_lines) {
    CHECK(absl::StrContains(line, ": OK backend=backend-a "));
    CHECK(absl::StrContains(line, "message=\"Hello weft from backend-a\""));
  }
  CHECK(absl::StrContains(out, "summary: ok=3 failed=0"));
  CHECK(absl::StrContains(out, "backend backend-a: 3"));

  // One log line per request, and a clean exit on SIGTERM.
  CHECK(WaitFor(
      [&] {
        const std::string log = server.Log();
        size_t n = 0;
        for (size_t pos = 0; (pos = log.find("SayHello", pos)) != std::string::npos; ++pos) ++n;
        return n == 3;
      },
      absl::Seconds(5)));
  CHECK(server.Stop() == 0);
}

TEST_CASE("greeter-client fails with UNAVAILABLE when nothing listens", "[e2e]") {
  const std::string client_bin = BinaryPath("greeter-client");
  REQUIRE(!client_bin.empty());
  const std::string dir = MakeTempDir("e2e_greeter_down_");
  const int port = PickFreePort();  // free, and nobody is started on it

  Subprocess client({client_bin, absl::StrCat("--target=ipv4:127.0.0.1:", port), "--count=2",
                     "--interval=10ms", "--deadline=1s"},
                    {}, dir + "/client.log");
  REQUIRE(client.Start().ok());
  REQUIRE(client.Wait(absl::Seconds(30)));
  const std::string out = client.Log();
  INFO("client output:\n" << out);
  CHECK(client.ExitCode() != 0);
  const std::vector<std::string> rpc_lines = LinesStartingWith(out, "rpc ");
  REQUIRE(rpc_lines.size() == 2);
  for (const std::string& line : rpc_lines) CHECK(absl::StrContains(line, ": UNAVAILABLE "));
  CHECK(absl::StrContains(out, "summary: ok=0 failed=2"));
}

TEST_CASE("greeter-server exits non-zero with one line when its port is taken", "[e2e]") {
  const std::string server_bin = BinaryPath("greeter-server");
  REQUIRE(!server_bin.empty());
  const std::string dir = MakeTempDir("e2e_greeter_bind_");
  const int port = PickFreePort();
  const std::string addr = absl::StrCat("--addr=127.0.0.1:", port);

  Subprocess first({server_bin, addr, "--name=first"}, {}, dir + "/first.log");
  REQUIRE(first.Start().ok());
  REQUIRE(WaitForTcpPort("127.0.0.1", port, absl::Seconds(10)));

  Subprocess second({server_bin, addr, "--name=second"}, {}, dir + "/second.log");
  REQUIRE(second.Start().ok());
  REQUIRE(second.Wait(absl::Seconds(10)));
  INFO("second server log:\n" << second.Log());
  CHECK(second.ExitCode() == 1);
  CHECK(absl::StrContains(second.Log(), "cannot listen on 127.0.0.1:"));
  CHECK(LinesStartingWith(second.Log(), "greeter-server: ").size() == 1);
  CHECK(absl::StripAsciiWhitespace(second.Log()).find('\n') == absl::string_view::npos);
  CHECK(first.Running());
}

TEST_CASE("Subprocess reports a bad binary path from Start()", "[e2e][harness]") {
  const std::string dir = MakeTempDir("e2e_harness_");
  Subprocess missing({dir + "/no-such-binary"}, {}, dir + "/missing.log");
  const absl::Status status = missing.Start();
  CHECK(!status.ok());
  CHECK(absl::StrContains(status.message(), "no-such-binary"));
  CHECK(!missing.Running());
}

TEST_CASE("Subprocess passes env, stops with SIGTERM and WriteFile replaces atomically", "[e2e][harness]") {
  const std::string dir = MakeTempDir("e2e_harness_");
  WriteFile(dir + "/a.txt", "one");
  WriteFile(dir + "/a.txt", "two");
  Subprocess cat({"/bin/cat", dir + "/a.txt"}, {}, dir + "/cat.log");
  REQUIRE(cat.Start().ok());
  REQUIRE(cat.Wait(absl::Seconds(10)));
  CHECK(cat.Log() == "two");
  CHECK(cat.ExitCode() == 0);

  Subprocess sh({"/bin/sh", "-c", "echo value=$WEFT_E2E_PROBE; exec sleep 60"}, {{"WEFT_E2E_PROBE", "42"}},
                dir + "/sh.log");
  REQUIRE(sh.Start().ok());
  REQUIRE(WaitFor([&] { return absl::StrContains(sh.Log(), "value=42"); }, absl::Seconds(10)));
  CHECK(sh.Running());
  CHECK(sh.Stop(absl::Seconds(5)) == 128 + 15);  // sleep dies of SIGTERM
  CHECK(!sh.Running());

  CHECK(HttpGet("127.0.0.1", PickFreePort(), "/healthz", absl::Seconds(1)).status == 0);
}

}  // namespace
}  // namespace weft::e2e
