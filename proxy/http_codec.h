// HTTP/1.1 message parsing and serialization for weft-proxy's data path and
// admin port, over Node's http-parser. The parser is push-based and
// streaming: each Feed() reports what the bytes completed (the head, body
// pieces, the end of the message) and stops after a complete message so that
// pipelined bytes stay with the caller. Bodies are never accumulated here.
// Untrusted input gets a Status, never a crash; limits bound the head.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <http_parser.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft::proxy {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpHead {
  // Request line (requests) or status line (responses).
  std::string method;
  std::string target;  // as sent: origin-form "/x?y" or absolute-form "http://h/x"
  int status = 0;
  std::string reason;
  int version_major = 1;
  int version_minor = 1;
  HeaderList headers;    // in arrival order, names as sent
  bool chunked = false;  // Transfer-Encoding: chunked
  std::optional<uint64_t> content_length;
  bool keep_alive = true;        // per the version and Connection header
  bool expect_continue = false;  // Expect: 100-continue
  // A request asking for a protocol upgrade ("Connection: upgrade" and an
  // Upgrade header; never CONNECT) without a body; a 101 response taking one.
  bool upgrade = false;

  // The first value of `name` (case-insensitive), or nullopt.
  std::optional<std::string> Get(std::string_view name) const;
  // The same without a copy: null when absent; valid until headers change.
  const std::string* Find(std::string_view name) const;
  void Remove(std::string_view name);
  void Set(std::string_view name, std::string value);  // replaces all
  void Add(std::string_view name, std::string value);
};

struct HttpLimits {
  size_t max_head_bytes = 64 * 1024;
  size_t max_headers = 100;
};

class HttpParser {
 public:
  enum class Kind { kRequest, kResponse };
  explicit HttpParser(Kind kind, HttpLimits limits = {});
  ~HttpParser();
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  struct Events {
    bool head_complete = false;  // head() is ready (set once per message)
    std::string body;            // body bytes decoded by this Feed (de-chunked)
    bool message_complete = false;
    HeaderList trailers;  // a chunked message's trailer fields, when complete
  };

  // Parses up to `data.size()` bytes; returns how many were consumed (less
  // than given only after a complete message). Events accumulate in events().
  // An error means the stream is unusable (answer 400 / close).
  absl::StatusOr<size_t> Feed(std::string_view data);
  // The peer closed the connection: completes an EOF-delimited response, or
  // fails when a message was cut short.
  absl::Status FeedEof();
  // For responses: the request was HEAD, so the response has no body.
  void SetRequestWasHead(bool head) { request_was_head_ = head; }
  // After message_complete: get ready for the next message on the stream.
  void Reset();

  Events& events() { return events_; }
  const Events& events() const { return events_; }
  const HttpHead& head() const { return head_; }
  // A copy of head() that takes its header fields instead of copying them
  // (head().headers is empty afterwards; the rest of head() stays): for
  // the data path, which forwards a changed copy of the fields.
  HttpHead TakeHead();
  HttpHead& mutable_head() { return head_; }
  bool in_message() const { return in_message_; }
  // True when a response has no framing and ends at EOF.
  bool eof_delimited() const;

 private:
  // Adds `len` bytes to the head; false (with error_if_over as the error)
  // once the head is over limits_.max_head_bytes.
  bool CountHeadBytes(size_t len, const char* error_if_over);
  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t len);
  static int OnStatus(http_parser* p, const char* at, size_t len);
  static int OnHeaderField(http_parser* p, const char* at, size_t len);
  static int OnHeaderValue(http_parser* p, const char* at, size_t len);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t len);
  static int OnMessageComplete(http_parser* p);

  Kind kind_;
  HttpLimits limits_;
  http_parser parser_;  // by value: a response parser is made for every forwarded request
  HttpHead head_;
  Events events_;
  size_t head_bytes_ = 0;
  bool last_was_value_ = false;
  bool in_trailers_ = false;
  bool in_message_ = false;
  bool request_was_head_ = false;
  std::string error_;
};

// Hop-by-hop headers (RFC 9110 §7.6.1) and those the Connection header names
// are removed before forwarding; so are framing headers, which the
// serializer sets itself.
void StripHopByHop(HttpHead& head);
// For an upgrade request or its 101: StripHopByHop, then "Connection:
// upgrade" and the Upgrade header put back (the upgrade is end to end).
void StripHopByHopKeepUpgrade(HttpHead& head);

// Serialization. The framing of the body that follows is given explicitly:
// chunked (Transfer-Encoding set), a known length (Content-Length set) or
// none (no body).
enum class BodyFraming { kNone, kLength, kChunked };
std::string SerializeRequestHead(const HttpHead& head, const std::string& target, BodyFraming framing,
                                 uint64_t length, bool keep_alive);
std::string SerializeResponseHead(const HttpHead& head, BodyFraming framing, uint64_t length,
                                  bool keep_alive);
std::string ChunkHeader(size_t size);  // "1a\r\n"
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
// The last chunk with the message's trailer fields (RFC 9112 §7.1.2). Fields
// that must not be trailers (framing, routing, hop-by-hop) are dropped.
std::string LastChunk(const HeaderList& trailers);

// A complete small response (errors, admin pages).
std::string SimpleResponse(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                           const HeaderList& extra = {});
std::string_view ReasonPhrase(int status);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace weft::proxy
