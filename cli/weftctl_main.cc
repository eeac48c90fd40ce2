// weftctl: the command-line client of weftd's admin REST API (DESIGN.md §6),
// for people asking the control plane what it knows: is it ready, which
// proxies are connected and in sync (and why not), what a proxy holds, the
// services, the policies and their errors, the CA's certificates.
// docs/weftctl.md is its manual; the exit codes there are a contract.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/admin_views.h"
#include "common/token_file.h"

ABSL_FLAG(std::string, admin_addr, "",
          "weftd's admin API as HOST:PORT (default: $WEFT_ADMIN_ADDR, else 127.0.0.1:15014)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the admin API bearer token (weftd's --admin-token-file)");
ABSL_FLAG(std::string, output, "table", "table|json");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "how long to wait for weftd to connect and answer");
ABSL_FLAG(std::string, type, "",
          "proxy-config: only this section: listeners|routes|clusters|endpoints|secrets");

namespace weft::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // weftd unreachable, an HTTP error, not ready
constexpr int kExitUsage = 2;    // bad command line

constexpr char kDefaultAdminAddr[] = "127.0.0.1:15014";

constexpr char kUsage[] = R"(weftctl: ask weftd (the Weft control plane) what it knows, over its admin API.

Usage: weftctl [flags] COMMAND [ARGS]

Commands:
  status                 weftd's health and readiness (exit 1 when not ready)
  proxies                connected proxies and, per resource type, SYNCED / STALE / NACKED
                         with the versions; NACK messages below the table
  proxy-config ID        the configuration proxy ID holds (an Envoy config dump, JSON);
                         --type=listeners|routes|clusters|endpoints|secrets prints one section
  services               services, their ports and endpoints
  policies               policies with their status; errors name the file and the field
  certificates           the CA's roots, intermediate, rotation and recently issued certificates
  help                   this text

Flags:
  --admin-addr=HOST:PORT weftd's --admin-addr (default: $WEFT_ADMIN_ADDR, else 127.0.0.1:15014)
  --token-file=PATH      the bearer token, when weftd runs with --admin-token-file
  --output=table|json    json prints weftd's JSON as it is (default table)
  --timeout=5s           how long to wait for weftd to connect and answer

Exit codes: 0 success (and help), 1 weftd unreachable, an error answer or not ready, 2 bad usage.
See docs/weftctl.md.
)";

int Usage(const std::string& problem) {
  if (!problem.empty()) std::fprintf(stderr, "weftctl: %s\n\n", problem.c_str());
  std::fputs(kUsage, stderr);
  return kExitUsage;
}

int Failure(const std::string& message) {
  std::fprintf(stderr, "weftctl: %s\n", message.c_str());
  return kExitFailure;
}

// The command line: weftctl's own flags (dashed or underscored, `--f=v` or
// `--f v`, anywhere on the line) and the positional words. Parsed here
// rather than by absl::ParseCommandLine so that a bad flag is a usage error
// (exit 2) with weftctl's usage, not absl's.
struct CommandLine {
  std::vector<std::string> words;
  std::set<std::string> flags_given;
  bool help = false;
};

absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv) {
  static const std::set<std::string> kFlags = {"admin_addr", "token_file", "output", "timeout", "type"};
  CommandLine line;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) line.words.push_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      line.words.push_back(arg);
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    for (char& c : name) {
      if (c == '-') c = '_';
    }
    if (name == "help" || name == "h") {
      line.help = true;
      continue;
    }
    if (kFlags.count(name) == 0) return absl::InvalidArgumentError("unknown flag " + arg);
    if (!has_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError(arg + " needs a value");
      value = argv[++i];
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--", arg.substr(arg[1] == '-' ? 2 : 1, name.size()),
                                                     ": ", error.empty() ? "bad value" : error));
    }
    line.flags_given.insert(name);
  }
  return line;
}

class Commands {
 public:
  Commands(AdminClient client, std::string token_file, OutputFormat format)
      : client_(std::move(client)), token_file_(std::move(token_file)), format_(format) {}

  int Status() {
    auto healthz = client_.Get("/healthz");
    if (!healthz.ok()) return Failure(std::string(healthz.status().message()));
    auto readyz = client_.Get("/readyz");
    if (!readyz.ok()) return Failure(std::string(readyz.status().message()));
    // 503 is weftd's "not ready yet", an answer like 200.
    if (readyz->status != 200 && readyz->status != 503) return HttpFailure("/readyz", *readyz);
    std::fputs(RenderStatus(healthz->status, healthz->body, readyz->status, readyz->body, format_).c_str(),
               stdout);
    return healthz->status == 200 && readyz->status == 200 ? kExitOk : kExitFailure;
  }

  // GET `path` and print it through `render`.
  int Show(const std::string& path, absl::StatusOr<std::string> (*render)(absl::string_view, OutputFormat)) {
    return Fetch(path, [&](const std::string& body) { return render(body, format_); });
  }

  int ProxyConfig(const std::string& id, const std::string& section) {
    return Fetch("/api/v1/proxies/" + EscapePathSegment(id) + "/config",
                 [&](const std::string& body) { return RenderConfigDump(body, section); });
  }

 private:
  template <typename Render>
  int Fetch(const std::string& path, Render render) {
    auto response = client_.Get(path);
    if (!response.ok()) return Failure(std::string(response.status().message()));
    if (response->status != 200) return HttpFailure(path, *response);
    absl::StatusOr<std::string> out = render(response->body);
    if (!out.ok()) return Failure(absl::StrCat("GET ", path, ": ", out.status().message()));
    std::fputs(out->c_str(), stdout);
    return kExitOk;
  }

  int HttpFailure(const std::string& path, const AdminResponse& response) {
    std::string message = absl::StrCat("weftd at ", client_.AddressText(), " answered HTTP ", response.status,
                                       " to GET ", path, ": ", ServerErrorMessage(response.body));
    if (response.status == 401) {
      absl::StrAppend(&message, token_file_.empty()
                                    ? "\nweftctl: no admin token was given and this weftd requires one: pass "
                                      "--token-file=PATH (the file weftd's --admin-token-file reads)"
                                    : "\nweftctl: the token in " + token_file_ +
                                          " is wrong: it must match weftd's --admin-token-file");
    }
    return Failure(message);
  }

  AdminClient client_;
  std::string token_file_;
  OutputFormat format_;
};

int Main(int argc, char** argv) {
  auto line = ParseCommandLine(argc, argv);
  if (!line.ok()) return Usage(std::string(line.status().message()));
  if (line->help || (!line->words.empty() && line->words[0] == "help")) {
    std::fputs(kUsage, stdout);  // asked for: on stdout, success
    return kExitOk;
  }
  if (line->words.empty()) return Usage("no command");
  const std::string command = line->words[0];
  const std::vector<std::string> args(line->words.begin() + 1, line->words.end());

  static const std::set<std::string> kCommands = {"status",   "proxies",  "proxy-config",
                                                  "services", "policies", "certificates"};
  if (kCommands.count(command) == 0) return Usage("unknown command \"" + command + "\"");
  if (command == "proxy-config") {
    if (args.size() != 1) return Usage("proxy-config takes one proxy ID (weftctl proxies lists them)");
  } else if (!args.empty()) {
    return Usage(absl::StrCat(command, " takes no arguments, got \"", absl::StrJoin(args, " "), "\""));
  }
  const std::string section = absl::GetFlag(FLAGS_type);
  if (line->flags_given.count("type") != 0 && command != "proxy-config") {
    return Usage("--type applies only to proxy-config");
  }
  if (!section.empty() && !IsConfigSection(section)) {
    return Usage("--type: want listeners, routes, clusters, endpoints or secrets, got \"" + section + "\"");
  }

  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "table" && output != "json")
    return Usage("--output: want table or json, got \"" + output + "\"");
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout <= absl::ZeroDuration()) return Usage("--timeout: want a positive duration such as 5s");

  // The flag, else $WEFT_ADMIN_ADDR, else weftd's default.
  std::string addr_text = absl::GetFlag(FLAGS_admin_addr);
  std::string addr_origin = "--admin-addr";
  if (line->flags_given.count("admin_addr") == 0) {
    const char* env = std::getenv("WEFT_ADMIN_ADDR");
    addr_text = env != nullptr && *env != '\0' ? env : kDefaultAdminAddr;
    addr_origin = env != nullptr && *env != '\0' ? "WEFT_ADMIN_ADDR" : "--admin-addr";
  }
  auto address = ParseAdminAddress(addr_text);
  if (!address.ok()) return Usage(addr_origin + ": " + std::string(address.status().message()));

  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  std::string token;
  if (!token_file.empty()) {
    auto read = common::ReadTokenFile(token_file);  // as weftd reads --admin-token-file
    if (!read.ok()) return Usage("--token-file: " + std::string(read.status().message()));
    token = *std::move(read);
  }

  Commands commands(AdminClient(*std::move(address), std::move(token), timeout), token_file,
                    output == "json" ? OutputFormat::kJson : OutputFormat::kTable);
  if (command == "status") return commands.Status();
  if (command == "proxies") return commands.Show("/api/v1/proxies", RenderProxies);
  if (command == "proxy-config") return commands.ProxyConfig(args[0], section);
  if (command == "services") return commands.Show("/api/v1/services", RenderServices);
  if (command == "policies") return commands.Show("/api/v1/policies", RenderPolicies);
  return commands.Show("/api/v1/certificates", RenderCertificates);
}

}  // namespace
}  // namespace weft::cli

int main(int argc, char** argv) { return weft::cli::Main(argc, argv); }
