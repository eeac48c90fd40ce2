// Access log and trace context for weft-proxy (docs/proxy.md, "Access log
// and trace context"): W3C Trace Context `traceparent` parsing and
// generation, and one JSON line per request written to a file or stdout
// (--access-log=PATH|-).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proxy/http_codec.h"

namespace weft::proxy {

// A W3C traceparent (version 00 when generated).
struct TraceContext {
  std::string version = "00";
  std::string trace_id;  // 32 lower-case hex digits, not all zero
  std::string span_id;   // 16 lower-case hex digits, not all zero
  std::string flags = "01";
  std::string Format() const;  // "00-<trace>-<span>-<flags>"
};

// Parses a traceparent header as W3C Trace Context level 1 says: version
// "ff" and malformed or all-zero ids are invalid; a future version may carry
// more fields after a '-'. nullopt when invalid.
std::optional<TraceContext> ParseTraceparent(std::string_view value);
// The same check without building the context (the data path's, per request).
bool ValidTraceparent(std::string_view value);
// A new version-00 context with random ids (never all zero), sampled.
TraceContext NewTraceContext(uint64_t r1, uint64_t r2, uint64_t r3);
// The same formatted as a traceparent value, built in one piece.
std::string NewTraceparent(uint64_t r1, uint64_t r2, uint64_t r3);

// Keeps a valid `traceparent` of `head` unchanged, else (absent or
// invalid, then without its `tracestate`) sets a new one from `random`.
// The trace id goes to `trace_id` when given.
template <typename Random>
void EnsureTraceparent(HttpHead& head, Random&& random, std::string* trace_id) {
  if (const std::string* v = head.Find("traceparent")) {
    if (ValidTraceparent(*v)) {
      // "00-" then the 32 digits of the trace id.
      if (trace_id != nullptr) *trace_id = v->substr(3, 32);
      return;
    }
    head.Remove("tracestate");
  }
  const uint64_t r1 = random(), r2 = random(), r3 = random();
  head.Set("traceparent", NewTraceparent(r1, r2, r3));
  // "00-" then the 32 digits of the trace id.
  if (trace_id != nullptr) *trace_id = head.Find("traceparent")->substr(3, 32);
}

struct AccessLogEntry {
  std::chrono::system_clock::time_point start;
  double duration_ms = 0;
  std::string direction;  // "inbound" | "outbound"
  std::string method, path, protocol = "HTTP/1.1";
  int response_code = 0;       // 0: no response was sent
  std::string response_flags;  // Envoy's short flags, e.g. "UO", "FI", "UH"
  std::string upstream_cluster, upstream_host;
  std::string source_identity, destination_identity;
  std::string request_id, trace_id, authority;
};

// One JSON object, no trailing newline.
std::string FormatAccessLogLine(const AccessLogEntry& e);

// Thread-safe line writer.
class AccessLog {
 public:
  // "-" is stdout; otherwise the file is opened for appending (an error
  // naming the path when it cannot be).
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(const std::string& path);
  ~AccessLog();
  void Write(const AccessLogEntry& e);

 private:
  AccessLog(FILE* f, bool owned) : file_(f), owned_(owned) {}
  absl::Mutex mu_;
  FILE* file_ ABSL_GUARDED_BY(mu_);
  bool owned_;
};

}  // namespace weft::proxy
