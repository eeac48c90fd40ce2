#include "proxy/http_codec.h"

#include <http_parser.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

// Exported by libhttp_parser 2.9 but not declared in its header.
extern "C" int http_message_needs_eof(const http_parser* parser);

namespace weft::proxy {
namespace {

HttpParser* Self(http_parser* p) { return static_cast<HttpParser*>(p->data); }

// RFC 9110 tchar, as a table: this runs for every header name of every message.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTokenChar = MakeTokenTable();

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!kTokenChar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// `lower` is lower case already.
bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(s[i])) != lower[i]) return false;
  }
  return true;
}

http_parser_settings MakeSettings();

constexpr size_t kTypicalHeaders = 8;

}  // namespace

// ASCII only (header names are tokens), inline (absl::EqualsIgnoreCase is an
// out-of-line memcasecmp call).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::optional<std::string> HttpHead::Get(std::string_view name) const {
  if (const std::string* v = Find(name)) return *v;
  return std::nullopt;
}

const std::string* HttpHead::Find(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

void HttpHead::Remove(std::string_view name) {
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& h) { return EqualsIgnoreCase(h.first, name); }),
                headers.end());
}

void HttpHead::Set(std::string_view name, std::string value) {
  Remove(name);
  headers.emplace_back(std::string(name), std::move(value));
}

void HttpHead::Add(std::string_view name, std::string value) {
  headers.emplace_back(std::string(name), std::move(value));
}

// ------------------------------------------------------------------ parser

HttpParser::HttpParser(Kind kind, HttpLimits limits) : kind_(kind), limits_(limits) {
  http_parser_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE);
  parser_.data = this;
}

HttpParser::~HttpParser() = default;

void HttpParser::Reset() {
  http_parser_pause(&parser_, 0);
  events_ = Events{};
  in_message_ = false;
}

bool HttpParser::eof_delimited() const {
  return kind_ == Kind::kResponse && !head_.chunked && !head_.content_length.has_value() &&
         http_message_needs_eof(&parser_);
}

namespace {
http_parser_settings MakeSettings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  return s;
}
}  // namespace

absl::StatusOr<size_t> HttpParser::Feed(std::string_view data) {
  static const http_parser_settings settings = [] {
    http_parser_settings s = MakeSettings();
    s.on_message_begin = &HttpParser::OnMessageBegin;
    s.on_url = &HttpParser::OnUrl;
    s.on_status = &HttpParser::OnStatus;
    s.on_header_field = &HttpParser::OnHeaderField;
    s.on_header_value = &HttpParser::OnHeaderValue;
    s.on_headers_complete = &HttpParser::OnHeadersComplete;
    s.on_body = &HttpParser::OnBody;
    s.on_message_complete = &HttpParser::OnMessageComplete;
    return s;
  }();
  if (data.empty()) return 0;
  size_t n = http_parser_execute(&parser_, &settings, data.data(), data.size());
  http_errno err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) return n;  // a message completed
  if (err != HPE_OK) {
    std::string why = error_.empty() ? http_errno_description(err) : error_;
    return absl::InvalidArgumentError(
        absl::StrCat("malformed HTTP ", kind_ == Kind::kRequest ? "request" : "response", ": ", why));
  }
  if (n != data.size()) return absl::InvalidArgumentError("malformed HTTP message");
  return n;
}

absl::Status HttpParser::FeedEof() {
  if (!in_message_) return absl::OkStatus();
  http_parser_settings settings = MakeSettings();
  settings.on_message_complete = &HttpParser::OnMessageComplete;
  settings.on_body = &HttpParser::OnBody;
  http_parser_execute(&parser_, &settings, nullptr, 0);
  if (events_.message_complete) return absl::OkStatus();
  return absl::UnavailableError("connection closed in the middle of a message");
}

HttpHead HttpParser::TakeHead() {
  HeaderList headers = std::move(head_.headers);
  head_.headers.clear();
  HttpHead out = head_;
  out.headers = std::move(headers);
  return out;
}

int HttpParser::OnMessageBegin(http_parser* p) {
  HttpParser* self = Self(p);
  // Room for a typical head's fields at once, kept from message to message
  // unless TakeHead() took them (the vector would grow 1, 2, 4, 8).
  // Field by field, as HttpHead{} would: the strings keep their capacity.
  HttpHead& h = self->head_;
  h.headers.clear();
  if (h.headers.capacity() == 0) h.headers.reserve(kTypicalHeaders);
  h.method.clear();
  h.target.clear();
  h.status = 0;
  h.reason.clear();
  h.version_major = 1;
  h.version_minor = 1;
  h.chunked = false;
  h.content_length.reset();
  h.keep_alive = true;
  h.expect_continue = false;
  h.upgrade = false;
  self->head_bytes_ = 0;
  self->last_was_value_ = false;
  self->in_trailers_ = false;
  self->in_message_ = true;
  self->error_.clear();
  return 0;
}

bool HttpParser::CountHeadBytes(size_t len, const char* error_if_over) {
  head_bytes_ += len;
  if (head_bytes_ <= limits_.max_head_bytes) return true;
  error_ = error_if_over;
  return false;
}

int HttpParser::OnUrl(http_parser* p, const char* at, size_t len) {
  HttpParser* self = Self(p);
  if (!self->CountHeadBytes(len, "request head too large")) return 1;
  self->head_.target.append(at, len);
  return 0;
}

int HttpParser::OnStatus(http_parser* p, const char* at, size_t len) {
  HttpParser* self = Self(p);
  if (!self->CountHeadBytes(len, "response head too large")) return 1;
  self->head_.reason.append(at, len);
  return 0;
}

int HttpParser::OnHeaderField(http_parser* p, const char* at, size_t len) {
  HttpParser* self = Self(p);
  if (!self->CountHeadBytes(len, "head too large")) return 1;
  // After the head, fields are a chunked message's trailers.
  HeaderList& fields = self->in_trailers_ ? self->events_.trailers : self->head_.headers;
  if (fields.empty() || self->last_was_value_) {
    if (fields.size() >= self->limits_.max_headers) {
      self->error_ = self->in_trailers_ ? "too many trailers" : "too many headers";
      return 1;
    }
    fields.emplace_back();
  }
  fields.back().first.append(at, len);
  self->last_was_value_ = false;
  return 0;
}

int HttpParser::OnHeaderValue(http_parser* p, const char* at, size_t len) {
  HttpParser* self = Self(p);
  if (!self->CountHeadBytes(len, "head too large")) return 1;
  HeaderList& fields = self->in_trailers_ ? self->events_.trailers : self->head_.headers;
  if (fields.empty()) return 1;
  fields.back().second.append(at, len);
  self->last_was_value_ = true;
  return 0;
}

int HttpParser::OnHeadersComplete(http_parser* p) {
  HttpParser* self = Self(p);
  HttpHead& h = self->head_;
  h.version_major = p->http_major;
  h.version_minor = p->http_minor;
  if (self->kind_ == Kind::kRequest) {
    h.method = http_method_str(static_cast<http_method>(p->method));
    if (h.target.empty()) {
      self->error_ = "empty request target";
      return -1;
    }
  } else {
    h.status = p->status_code;
  }
  // Header names must be RFC 9110 tokens: a lenient parser would accept
  // "Transfer-Encoding : chunked", a classic request-smuggling vector.
  for (const auto& [name, value] : h.headers) {
    if (!IsToken(name)) {
      self->error_ = "invalid header name";
      return -1;
    }
  }
  h.keep_alive = http_should_keep_alive(p) != 0;
  h.chunked = (p->flags & F_CHUNKED) != 0;
  if (!h.chunked && (p->flags & F_CONTENTLENGTH) != 0) h.content_length = p->content_length;
  if (h.Find("transfer-encoding") != nullptr && !h.chunked) {
    // Only chunked is understood; anything else cannot be framed safely.
    self->error_ = "unsupported transfer-encoding";
    return -1;
  }
  if (const std::string* expect = h.Find("expect"))
    h.expect_continue = EqualsIgnoreCase(*expect, "100-continue");
  if (p->upgrade && self->kind_ == Kind::kRequest && p->method == HTTP_CONNECT) {
    self->error_ = "CONNECT is not supported";
    return -1;
  }
  // http-parser's upgrade flag: Connection "upgrade" + Upgrade on a request,
  // or a 101 response with them. A request with a body is not taken as an upgrade.
  h.upgrade = p->upgrade != 0 &&
              (self->kind_ == Kind::kResponse || (!h.chunked && h.content_length.value_or(0) == 0));
  self->events_.head_complete = true;
  self->in_trailers_ = true;
  self->last_was_value_ = false;
  if (self->kind_ == Kind::kResponse && self->request_was_head_) return 1;  // no body follows
  return 0;
}

int HttpParser::OnBody(http_parser* p, const char* at, size_t len) {
  Self(p)->events_.body.append(at, len);
  return 0;
}

int HttpParser::OnMessageComplete(http_parser* p) {
  HttpParser* self = Self(p);
  for (const auto& [name, value] : self->events_.trailers) {
    if (!IsToken(name)) {
      self->error_ = "invalid trailer name";
      return -1;
    }
  }
  self->events_.message_complete = true;
  self->in_message_ = false;
  http_parser_pause(p, 1);
  return 0;
}

// ----------------------------------------------------------- serialization

namespace {
// By length first: every forwarded header is checked, twice per request.
bool IsHopByHop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return EqualsLower(name, "te");
    case 6:
      return EqualsLower(name, "expect");
    case 7:
      return EqualsLower(name, "trailer") || EqualsLower(name, "upgrade");
    case 10:
      return EqualsLower(name, "connection") || EqualsLower(name, "keep-alive");
    case 14:
      return EqualsLower(name, "content-length");
    case 16:
      return EqualsLower(name, "proxy-connection");
    case 17:
      return EqualsLower(name, "transfer-encoding");
    case 18:
      return EqualsLower(name, "proxy-authenticate");
    case 19:
      return EqualsLower(name, "proxy-authorization");
    default:
      return false;
  }
}
}  // namespace

void StripHopByHop(HttpHead& head) {
  // One pass over the headers (this runs twice per proxied request); the
  // few names a Connection header lists stay off the heap.
  absl::InlinedVector<std::string, 4> named;
  for (const auto& [k, v] : head.headers) {
    if (EqualsLower(k, "connection")) {
      for (absl::string_view t : absl::StrSplit(v, ',')) {
        std::string name(absl::StripAsciiWhitespace(t));
        if (!name.empty()) named.push_back(name);
      }
    }
  }
  auto& hs = head.headers;
  auto hop = [&](const auto& h) {
    return IsHopByHop(h.first) || std::any_of(named.begin(), named.end(), [&](const std::string& n) {
             return EqualsIgnoreCase(h.first, n);
           });
  };
  // Most heads have nothing to strip: no moves then.
  auto first = std::find_if(hs.begin(), hs.end(), hop);
  if (first == hs.end()) return;
  hs.erase(std::remove_if(first, hs.end(), hop), hs.end());
}

void StripHopByHopKeepUpgrade(HttpHead& head) {
  std::optional<std::string> protocol = head.Get("upgrade");
  StripHopByHop(head);
  head.Add("connection", "upgrade");
  if (protocol) head.Add("upgrade", std::move(*protocol));
}

namespace {
// A head in one allocation and one pass of copies: the exact size is
// counted first (serialization runs twice per proxied request).
class HeadWriter {
 public:
  HeadWriter(std::string& out, size_t size) : out_(out) {
    out_.resize(size);
    p_ = out_.data();
  }
  HeadWriter& Put(std::string_view s) {
    if (s.empty()) return *this;  // an empty view's data() may be null
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }

 private:
  std::string& out_;
  char* p_;
};

std::string SerializeHead(std::string_view a, std::string_view b, std::string_view c, const HttpHead& head,
                          BodyFraming framing, uint64_t length, bool keep_alive) {
  constexpr std::string_view kChunked = "transfer-encoding: chunked\r\n";
  constexpr std::string_view kLength = "content-length: ";
  constexpr std::string_view kClose = "connection: close\r\n";
  char digits[24];
  std::string_view length_digits;
  if (framing == BodyFraming::kLength) {
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), length);
    length_digits = std::string_view(digits, end - digits);
  }
  size_t size = a.size() + 1 + b.size() + c.size() + 2 + 2;  // the start line, the blank line
  for (const auto& [k, v] : head.headers) size += k.size() + v.size() + 4;
  if (framing == BodyFraming::kChunked) size += kChunked.size();
  if (framing == BodyFraming::kLength) size += kLength.size() + length_digits.size() + 2;
  if (!keep_alive) size += kClose.size();
  std::string out;
  HeadWriter w(out, size);
  w.Put(a).Put(" ").Put(b).Put(c).Put("\r\n");
  for (const auto& [k, v] : head.headers) w.Put(k).Put(": ").Put(v).Put("\r\n");
  if (framing == BodyFraming::kChunked) w.Put(kChunked);
  if (framing == BodyFraming::kLength) w.Put(kLength).Put(length_digits).Put("\r\n");
  if (!keep_alive) w.Put(kClose);
  w.Put("\r\n");
  return out;
}
}  // namespace

std::string SerializeRequestHead(const HttpHead& head, const std::string& target, BodyFraming framing,
                                 uint64_t length, bool keep_alive) {
  return SerializeHead(head.method, target, " HTTP/1.1", head, framing, length, keep_alive);
}

std::string SerializeResponseHead(const HttpHead& head, BodyFraming framing, uint64_t length,
                                  bool keep_alive) {
  std::string_view reason = head.reason.empty() ? ReasonPhrase(head.status) : std::string_view(head.reason);
  char status[16] = "HTTP/1.1 ";
  auto [end, ec] = std::to_chars(status + 9, status + sizeof(status), head.status);
  return SerializeHead(std::string_view(status, end - status), std::string_view(), reason, head, framing,
                       length, keep_alive);
}

std::string ChunkHeader(size_t size) {
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%zx\r\n", size);
  return std::string(buf, n);
}

std::string LastChunk(const HeaderList& trailers) {
  if (trailers.empty()) return std::string(kLastChunk);
  std::string out = "0\r\n";
  for (const auto& [k, v] : trailers) {
    if (IsHopByHop(k) || EqualsIgnoreCase(k, "host") || EqualsIgnoreCase(k, "content-type") ||
        EqualsIgnoreCase(k, "content-encoding") || EqualsIgnoreCase(k, "content-range")) {
      continue;
    }
    absl::StrAppend(&out, k, ": ", v, "\r\n");
  }
  out += "\r\n";
  return out;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

std::string SimpleResponse(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                           const HeaderList& extra) {
  HttpHead head;
  head.status = status;
  if (!content_type.empty()) head.Add("content-type", std::string(content_type));
  for (const auto& h : extra) head.headers.push_back(h);
  std::string out = SerializeResponseHead(head, BodyFraming::kLength, body.size(), keep_alive);
  out.append(body.data(), body.size());
  return out;
}

}  // namespace weft::proxy
