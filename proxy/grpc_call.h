// The sidecar's gRPC client for its two calls to weftd: the ADS stream and
// CreateCertificate. One call per connection, blocking, on the calling
// thread: gRPC's wire protocol (length-prefixed messages, grpc-status in the
// trailers) over HTTP/2 (nghttp2) over TLS 1.2+ (OpenSSL) with ALPN "h2",
// the server's certificate verified against the given roots and name.
//
// It replaces gRPC's own client library in weft-proxy, which brought 3.5 MB of
// code and seven threads to a process that makes these two calls
// (docs/benchmarks.md, "Session 7"). weftd and the tests still use
// gRPC; the tests run this client against a real gRPC server.
//
// OpenSSL writes with write(2): a program using this must ignore SIGPIPE,
// as weft-proxy does, or a write to a connection weftd closed ends it.
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "ca/x509.h"

namespace google::protobuf {
class MessageLite;
}

namespace weft::proxy {

struct GrpcCallOptions {
  std::string target;       // HOST:PORT; HOST a DNS name, an IPv4 address or [an IPv6 address]
  std::string server_name;  // the name (or IP) weftd's certificate must carry; "" = HOST
  std::string roots_pem;    // the roots that authenticate weftd
  // The client certificate, when there is one (borrowed until Start returns).
  EVP_PKEY* client_key = nullptr;
  const std::vector<ca::X509Ptr>* client_chain = nullptr;
  std::vector<std::pair<std::string, std::string>> metadata;  // lowercase names
  // The whole call's deadline (sent as grpc-timeout); none = connecting is
  // bounded by connect_timeout and the call by nothing.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::chrono::milliseconds connect_timeout{10000};
  size_t max_receive_message_bytes = 64 << 20;
};

// Status codes are gRPC's (absl::StatusCode has the same numbers).
class GrpcCall {
 public:
  explicit GrpcCall(GrpcCallOptions options);
  ~GrpcCall();
  GrpcCall(const GrpcCall&) = delete;
  GrpcCall& operator=(const GrpcCall&) = delete;

  // Connects, handshakes and opens the call to `path`
  // ("/package.Service/Method"). UNAVAILABLE when weftd cannot be reached or
  // authenticated.
  absl::Status Start(std::string_view path);
  // Sends one message. False once the call has ended; Finish() says why.
  bool Write(const google::protobuf::MessageLite& message);
  // Half-closes: no more messages from this side.
  bool WritesDone();
  // The next message of the response. False at the end of the response or
  // on an error; Finish() then has the call's status.
  bool Read(google::protobuf::MessageLite* message);
  // The call's status once it has ended (waits for the trailers): the
  // server's grpc-status and grpc-message, or what ended it first.
  absl::Status Finish();
  // From any thread: ends the call. A blocked Start, Read or Write returns,
  // and Finish() gives CANCELLED.
  void Cancel();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// One request, one response.
absl::Status GrpcUnaryCall(const GrpcCallOptions& options, std::string_view path,
                           const google::protobuf::MessageLite& request,
                           google::protobuf::MessageLite* response);

// gRPC's mapping of a response's HTTP status (without a grpc-status) to a code.
absl::StatusCode GrpcCodeForHttpStatus(int http_status);
// grpc-message is percent-encoded on the wire.
std::string PercentDecode(std::string_view in);

}  // namespace weft::proxy
