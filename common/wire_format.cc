#include "common/wire_format.h"

namespace weft::common {

void AppendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void AppendLengthDelimited(std::string& out, int field, std::string_view bytes) {
  AppendVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  AppendVarint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

bool WireReader::Varint(uint64_t& out) {
  out = 0;
  for (int shift = 0; pos_ < data_.size() && shift < 64; shift += 7) {
    uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
    out |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool WireReader::Next(Field& field) {
  if (pos_ >= data_.size() || malformed_) return false;
  field.begin = pos_;
  uint64_t tag;
  if (!Varint(tag)) return !(malformed_ = true);
  field.number = static_cast<int>(tag >> 3);
  field.wire_type = static_cast<int>(tag & 7);
  field.bytes = {};
  switch (field.wire_type) {
    case 0:
      if (!Varint(field.varint)) return !(malformed_ = true);
      break;
    case 1:
      if (data_.size() - pos_ < 8) return !(malformed_ = true);
      pos_ += 8;
      break;
    case 5:
      if (data_.size() - pos_ < 4) return !(malformed_ = true);
      pos_ += 4;
      break;
    case 2: {
      uint64_t len;
      if (!Varint(len) || data_.size() - pos_ < len) return !(malformed_ = true);
      field.bytes = data_.substr(pos_, len);
      pos_ += len;
      break;
    }
    default:
      return !(malformed_ = true);
  }
  field.end = pos_;
  return true;
}

void WireReader::SkipRepeated(int number) {
  const char tag = static_cast<char>((number << 3) | 2);
  while (!malformed_ && pos_ < data_.size() && data_[pos_] == tag) {
    ++pos_;
    uint64_t len;
    if (!Varint(len) || data_.size() - pos_ < len) {
      malformed_ = true;
      return;
    }
    pos_ += len;
  }
}

}  // namespace weft::common
