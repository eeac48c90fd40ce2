// greeter-client: calls Greeter.SayHello in a loop and reports, one line per
// RPC on stdout, which backend answered. Used by the demo and the e2e tests to
// drive gRPC's own xDS client (the xds:/// resolver) against weftd; a direct
// target such as ipv4:127.0.0.1:50051 works too.
//
//   greeter-client --xds-server=127.0.0.1:15010 --count=20
//
// Output (stdout, flushed per line):
//   rpc 1: OK backend=backend-a message="Hello weft from backend-a" latency_ms=1.234
//   rpc 2: UNAVAILABLE failed to connect to all addresses
//   summary: ok=1 failed=1
//   backend backend-a: 1
// Exit code 0 when at least one RPC succeeded, else 1 (2 on a bad flag).
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/logging.h"
#include "greeter/greeter.grpc.pb.h"

ABSL_FLAG(std::string, target, "xds:///greeter.default.svc.cluster.local:50051",
          "gRPC target: xds:///HOST:PORT, ipv4:IP:PORT, dns:///HOST:PORT, ...");
ABSL_FLAG(int, count, 10, "number of RPCs; 0 = until SIGINT/SIGTERM");
ABSL_FLAG(absl::Duration, interval, absl::Milliseconds(500), "pause between RPCs");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(2), "deadline of each RPC");
ABSL_FLAG(bool, wait_for_ready, false, "queue RPCs until the channel is ready instead of failing fast");
ABSL_FLAG(std::string, xds_server, "",
          "HOST:PORT of a plaintext xDS server; when set and no GRPC_XDS_BOOTSTRAP[_CONFIG] is in "
          "the environment, the client writes its own bootstrap");
ABSL_FLAG(std::string, node_id, "proxyless~127.0.0.1~greeter-client.default~default.svc.cluster.local",
          "xDS node id used in the generated bootstrap");
ABSL_FLAG(std::string, name, "weft", "the name sent in each HelloRequest");

namespace weft::examples {
namespace {

using greeter::v1::Greeter;
using greeter::v1::HelloReply;
using greeter::v1::HelloRequest;

std::atomic<bool> stop_requested{false};

void OnStopSignal(int) { stop_requested = true; }

// A JSON string literal; absl::CEscape's output is valid JSON for printable
// ASCII, and anything else in a host:port or node id would be a user error.
std::string JsonString(const std::string& s) { return absl::StrCat("\"", absl::CEscape(s), "\""); }

std::string BootstrapJson(const std::string& xds_server, const std::string& node_id) {
  return absl::StrCat(R"({"xds_servers":[{"server_uri":)", JsonString(xds_server),
                      R"(,"channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],)",
                      R"("node":{"id":)", JsonString(node_id),
                      R"(,"cluster":"greeter-client","metadata":{"NAMESPACE":"default",)",
                      R"("SERVICE_ACCOUNT":"greeter-client"},"locality":{}}})");
}

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN_CODE";
  }
}

// Sleeps in short steps so that SIGINT/SIGTERM end a long --interval promptly.
void SleepUnlessStopped(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!stop_requested) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
}

void PrintLine(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int Run() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const int count = absl::GetFlag(FLAGS_count);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  const absl::Duration deadline = absl::GetFlag(FLAGS_deadline);
  const std::string xds_server = absl::GetFlag(FLAGS_xds_server);
  if (count < 0 || interval < absl::ZeroDuration() || deadline <= absl::ZeroDuration()) {
    std::fprintf(stderr, "greeter-client: --count must be >= 0, --interval >= 0 and --deadline > 0\n");
    return 2;
  }

  // gRPC reads its bootstrap when the first xds:/// channel is created, so the
  // environment must be set before that.
  if (!xds_server.empty()) {
    if (std::getenv("GRPC_XDS_BOOTSTRAP") != nullptr || std::getenv("GRPC_XDS_BOOTSTRAP_CONFIG") != nullptr) {
      WEFT_LOG(INFO) << "greeter-client: GRPC_XDS_BOOTSTRAP[_CONFIG] is set; ignoring --xds-server";
    } else {
      const std::string bootstrap = BootstrapJson(xds_server, absl::GetFlag(FLAGS_node_id));
      setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap.c_str(), 1);
      WEFT_LOG(INFO) << "greeter-client: xDS bootstrap " << bootstrap;
    }
  }

  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  std::unique_ptr<Greeter::Stub> stub = Greeter::NewStub(channel);

  int ok = 0;
  int failed = 0;
  std::map<std::string, int> per_backend;
  for (int i = 1; (count == 0 || i <= count) && !stop_requested; ++i) {
    if (i > 1) {
      SleepUnlessStopped(interval);
      if (stop_requested) break;
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    context.set_wait_for_ready(absl::GetFlag(FLAGS_wait_for_ready));
    HelloRequest request;
    request.set_name(absl::GetFlag(FLAGS_name));
    HelloReply reply;
    const absl::Time start = absl::Now();
    const grpc::Status status = stub->SayHello(&context, request, &reply);
    const double latency_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (status.ok()) {
      ++ok;
      ++per_backend[reply.backend()];
      PrintLine(absl::StrFormat("rpc %d: OK backend=%s message=\"%s\" latency_ms=%.3f", i, reply.backend(),
                                absl::CEscape(reply.message()), latency_ms));
    } else {
      ++failed;
      PrintLine(absl::StrFormat("rpc %d: %s %s", i, StatusCodeName(status.error_code()),
                                absl::StrReplaceAll(status.error_message(), {{"\n", " "}})));
    }
  }

  PrintLine(absl::StrFormat("summary: ok=%d failed=%d", ok, failed));
  for (const auto& [backend, n] : per_backend) {
    PrintLine(absl::StrFormat("backend %s: %d", backend, n));
  }
  return ok > 0 ? 0 : 1;
}

}  // namespace
}  // namespace weft::examples

int main(int argc, char** argv) {
  // absl flags are spelled with underscores; accept --xds-server and friends
  // too, the spelling the docs and the other Weft binaries use.
  weft::common::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  return weft::examples::Run();
}
