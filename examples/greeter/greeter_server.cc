// greeter-server: a Greeter backend for the demo mesh and the e2e tests. Every
// reply names the backend (--name) that served it, so a caller can see where
// its load balancer sent each RPC.
//
//   greeter-server --addr=127.0.0.1:50051 --name=backend-a
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "greeter/greeter.grpc.pb.h"

ABSL_FLAG(std::string, addr, "", "HOST:PORT to serve Greeter on (plaintext gRPC); required");
ABSL_FLAG(std::string, name, "greeter", "this backend's name, returned in every reply");

namespace weft::examples {
namespace {

using greeter::v1::Greeter;
using greeter::v1::HelloReply;
using greeter::v1::HelloRequest;

class GreeterService final : public Greeter::Service {
 public:
  explicit GreeterService(std::string name) : name_(std::move(name)) {}

  grpc::Status SayHello(grpc::ServerContext* context, const HelloRequest* request,
                        HelloReply* reply) override {
    reply->set_backend(name_);
    reply->set_message(absl::StrCat("Hello ", request->name(), " from ", name_));
    WEFT_LOG(INFO) << "greeter-server " << name_ << ": SayHello name=\"" << request->name()
                   << "\" peer=" << context->peer();
    return grpc::Status::OK;
  }

 private:
  const std::string name_;
};

// With port 0 the kernel picks the port; report the one actually bound.
std::string BoundAddress(const std::string& addr, int selected_port) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return addr;
  return absl::StrCat(addr.substr(0, colon + 1), selected_port);
}

// gRPC reports a failed bind as a multi-line error tree; trying the bind
// first gives the user one plain reason. Empty when the address is usable.
std::string BindProblem(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return "expected HOST:PORT";
  std::string host = addr.substr(0, colon);
  const std::string port = addr.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  const int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &result);
  if (gai != 0) return gai_strerror(gai);
  std::string problem;
  const int fd = socket(result->ai_family, result->ai_socktype, result->ai_protocol);
  if (fd < 0) {
    problem = std::strerror(errno);
  } else {
    if (bind(fd, result->ai_addr, result->ai_addrlen) != 0) problem = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(result);
  return problem;
}

int Run() {
  const std::string addr = absl::GetFlag(FLAGS_addr);
  const std::string name = absl::GetFlag(FLAGS_name);
  if (addr.empty()) {
    std::fprintf(stderr, "greeter-server: --addr=HOST:PORT is required\n");
    return 2;
  }

  if (const std::string problem = BindProblem(addr); !problem.empty()) {
    std::fprintf(stderr, "greeter-server: cannot listen on %s: %s\n", addr.c_str(), problem.c_str());
    return 1;
  }

  // Block the stop signals before gRPC starts its threads so that only the
  // sigwait() below ever receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  GreeterService service(name);
  int selected_port = 0;
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second server share a
  // port silently; a backend that cannot own its port must fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected_port == 0) {
    std::fprintf(stderr, "greeter-server: cannot listen on %s\n", addr.c_str());
    return 1;
  }
  WEFT_LOG(INFO) << "greeter-server " << name << " listening on " << BoundAddress(addr, selected_port);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  WEFT_LOG(INFO) << "greeter-server " << name << " stopping on signal " << signal_number;
  // Give in-flight RPCs a moment, then cancel what is left.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace weft::examples

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return weft::examples::Run();
}
