#include "server/raw_request.h"

#include <vector>

#include "common/hash.h"

namespace weft::server {
namespace {

constexpr int kResourceNamesField = 3;  // DiscoveryRequest.resource_names

// One field of a protobuf message: where it starts and ends, its number and,
// for length-delimited fields, its payload.
struct Field {
  size_t begin = 0, end = 0;
  int number = 0;
  std::string_view payload;
};

bool ReadVarint(const std::string& b, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; pos < b.size() && shift < 64; shift += 7) {
    uint8_t byte = static_cast<uint8_t>(b[pos++]);
    out |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool NextField(const std::string& b, size_t& pos, Field& f) {
  f.begin = pos;
  uint64_t tag;
  if (!ReadVarint(b, pos, tag)) return false;
  f.number = static_cast<int>(tag >> 3);
  uint64_t v;
  switch (tag & 7) {
    case 0:
      if (!ReadVarint(b, pos, v)) return false;
      break;
    case 1:
      if (b.size() - pos < 8) return false;
      pos += 8;
      break;
    case 5:
      if (b.size() - pos < 4) return false;
      pos += 4;
      break;
    case 2:
      if (!ReadVarint(b, pos, v) || b.size() - pos < v) return false;
      f.payload = std::string_view(b).substr(pos, v);
      pos += v;
      break;
    default:
      return false;
  }
  f.end = pos;
  return true;
}

}  // namespace

bool ReadSotwRequest(const grpc::ByteBuffer& buffer, RawSotwRequest& out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  out.bytes.clear();
  out.bytes.reserve(buffer.Length());
  for (const auto& s : slices) out.bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::string rest;
  common::StableHasher names;
  size_t pos = 0;
  Field f;
  while (pos < out.bytes.size()) {
    if (!NextField(out.bytes, pos, f)) return false;
    if (f.number == kResourceNamesField) {
      names.Add(f.payload);
    } else {
      rest.append(out.bytes, f.begin, f.end - f.begin);
    }
  }
  out.names_fingerprint = names.Value();
  return out.request.ParseFromString(rest);
}

bool ParseNames(RawSotwRequest& out) {
  size_t pos = 0;
  Field f;
  out.request.clear_resource_names();
  while (pos < out.bytes.size()) {
    if (!NextField(out.bytes, pos, f)) return false;
    if (f.number == kResourceNamesField) out.request.add_resource_names(std::string(f.payload));
  }
  return true;
}

}  // namespace weft::server
