#include "ca/der.h"

#include "absl/strings/str_cat.h"

namespace weft::ca::der {
namespace {

absl::Status Malformed(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::StatusOr<Element> Reader::ReadAny(absl::string_view field) {
  if (in_.size() < 2) return Malformed(field, in_.empty() ? "missing" : "truncated");
  auto byte = [&](size_t i) { return static_cast<uint8_t>(in_[i]); };
  Element e;
  e.tag = byte(0);
  if ((e.tag & 0x1F) == 0x1F) return Malformed(field, "high tag numbers are not supported");
  if (e.tag == 0) return Malformed(field, "tag 0 is reserved");
  size_t header = 2;
  size_t length = byte(1);
  if (length == 0x80) return Malformed(field, "indefinite length is not DER");
  if (length > 0x80) {
    size_t octets = length & 0x7F;
    if (octets > 4) return Malformed(field, "length too large");
    if (in_.size() < 2 + octets) return Malformed(field, "truncated length");
    if (byte(2) == 0) return Malformed(field, "non-minimal length");
    length = 0;
    for (size_t i = 0; i < octets; ++i) length = (length << 8) | byte(2 + i);
    if (length < 0x80) return Malformed(field, "non-minimal length");
    header += octets;
  }
  if (length > in_.size() - header) return Malformed(field, "length exceeds the input");
  e.content = in_.substr(header, length);
  e.whole = in_.substr(0, header + length);
  in_.remove_prefix(header + length);
  return e;
}

absl::StatusOr<Element> Reader::Read(uint8_t tag, absl::string_view field) {
  if (in_.empty()) return Malformed(field, "missing");
  if (PeekTag() != tag) {
    return Malformed(field, absl::StrCat("unexpected tag 0x", absl::Hex(PeekTag(), absl::kZeroPad2),
                                         ", want 0x", absl::Hex(tag, absl::kZeroPad2)));
  }
  return ReadAny(field);
}

absl::Status Reader::ExpectEnd(absl::string_view field) const {
  if (!in_.empty()) return Malformed(field, absl::StrCat(in_.size(), " unexpected trailing bytes"));
  return absl::OkStatus();
}

absl::Status CheckOid(absl::string_view content, absl::string_view field) {
  if (content.empty()) return Malformed(field, "empty object identifier");
  bool start = true;
  for (char c : content) {
    auto b = static_cast<uint8_t>(c);
    if (start && b == 0x80) return Malformed(field, "non-minimal object identifier");
    start = (b & 0x80) == 0;
  }
  if (!start) return Malformed(field, "unterminated object identifier");
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> BitStringBytes(const Element& e, absl::string_view field) {
  if (e.content.empty()) return Malformed(field, "empty BIT STRING");
  if (e.content[0] != 0) return Malformed(field, "BIT STRING with unused bits");
  return e.content.substr(1);
}

absl::StatusOr<bool> Boolean(const Element& e, absl::string_view field) {
  if (e.content.size() != 1) return Malformed(field, "BOOLEAN must be one octet");
  auto b = static_cast<uint8_t>(e.content[0]);
  if (b != 0x00 && b != 0xFF) return Malformed(field, "BOOLEAN must be 0x00 or 0xFF");
  return b == 0xFF;
}

void AppendTlv(std::string& out, uint8_t tag, absl::string_view content) {
  out.push_back(static_cast<char>(tag));
  size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<char>(n));
  } else {
    int octets = n > 0xFFFFFF ? 4 : n > 0xFFFF ? 3 : n > 0xFF ? 2 : 1;
    out.push_back(static_cast<char>(0x80 | octets));
    for (int i = octets - 1; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  }
  out.append(content.data(), content.size());
}

std::string Tlv(uint8_t tag, absl::string_view content) {
  std::string out;
  out.reserve(content.size() + 6);
  AppendTlv(out, tag, content);
  return out;
}

}  // namespace weft::ca::der
