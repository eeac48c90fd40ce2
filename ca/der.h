// Minimal strict DER (X.690) reading and writing for the CA's hot path: the
// CSR parser (ca/csr_parser.h) reads untrusted input with it, and the leaf
// encoder (ca/leaf_encoder.h) writes certificates with it. Only what PKCS#10
// and X.509 need: single-byte tags, definite minimal lengths up to 4 octets.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft::ca::der {

inline constexpr uint8_t kBoolean = 0x01;
inline constexpr uint8_t kInteger = 0x02;
inline constexpr uint8_t kBitString = 0x03;
inline constexpr uint8_t kOctetString = 0x04;
inline constexpr uint8_t kNull = 0x05;
inline constexpr uint8_t kOid = 0x06;
inline constexpr uint8_t kUtcTime = 0x17;
inline constexpr uint8_t kGeneralizedTime = 0x18;
inline constexpr uint8_t kSequence = 0x30;
inline constexpr uint8_t kSet = 0x31;
// Context-specific tags: [n] constructed and [n] primitive.
constexpr uint8_t ContextConstructed(int n) { return static_cast<uint8_t>(0xA0 | n); }
constexpr uint8_t ContextPrimitive(int n) { return static_cast<uint8_t>(0x80 | n); }

// A byte-string constant that may hold 0x00 octets (a plain string_view
// constant would stop at the first one).
template <size_t N>
constexpr absl::string_view Bytes(const char (&s)[N]) {
  return absl::string_view(s, N - 1);
}

// One element read from the input.
struct Element {
  uint8_t tag = 0;
  absl::string_view content;  // the value octets
  absl::string_view whole;    // tag + length + value, as encoded
};

// Reads consecutive elements from a buffer, refusing anything that is not
// DER: indefinite or non-minimal lengths, high tag numbers, lengths past the
// end. Errors name `field`, the caller's path to the element.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}

  bool AtEnd() const { return in_.empty(); }
  // The next tag, or 0 at the end (0 is never a valid DER tag here).
  uint8_t PeekTag() const { return in_.empty() ? 0 : static_cast<uint8_t>(in_[0]); }

  // The next element, whatever its tag.
  absl::StatusOr<Element> ReadAny(absl::string_view field);
  // The next element, which must carry `tag`.
  absl::StatusOr<Element> Read(uint8_t tag, absl::string_view field);
  // Fails unless every byte was consumed.
  absl::Status ExpectEnd(absl::string_view field) const;

 private:
  absl::string_view in_;
};

// Checks an OBJECT IDENTIFIER's content octets: non-empty, minimal
// sub-identifiers, the last one terminated.
absl::Status CheckOid(absl::string_view content, absl::string_view field);
// A BIT STRING's content without the leading unused-bits octet, which must be 0.
absl::StatusOr<absl::string_view> BitStringBytes(const Element& e, absl::string_view field);
// A DER BOOLEAN (0x00 or 0xFF).
absl::StatusOr<bool> Boolean(const Element& e, absl::string_view field);

// Writing: appends tag, minimal length and `content`.
void AppendTlv(std::string& out, uint8_t tag, absl::string_view content);
std::string Tlv(uint8_t tag, absl::string_view content);

}  // namespace weft::ca::der
