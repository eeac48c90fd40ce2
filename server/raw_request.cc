#include "server/raw_request.h"

#include <vector>

#include "common/hash.h"
#include "common/wire_format.h"

namespace weft::server {
namespace {

constexpr int kResourceNamesField = 3;  // DiscoveryRequest.resource_names

}  // namespace

bool ReadSotwRequest(const grpc::ByteBuffer& buffer, RawSotwRequest& out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  out.bytes.clear();
  out.bytes.reserve(buffer.Length());
  for (const auto& s : slices) out.bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::string rest;
  common::StableHasher names;
  common::WireReader reader(out.bytes);
  common::WireReader::Field f;
  while (reader.Next(f)) {
    if (f.number == kResourceNamesField) {
      names.Add(f.bytes);
    } else {
      rest.append(out.bytes, f.begin, f.end - f.begin);
    }
  }
  if (reader.malformed()) return false;
  out.names_fingerprint = names.Value();
  return out.request.ParseFromString(rest);
}

bool ParseNames(RawSotwRequest& out) {
  common::WireReader reader(out.bytes);
  common::WireReader::Field f;
  out.request.clear_resource_names();
  while (reader.Next(f)) {
    if (f.number == kResourceNamesField) out.request.add_resource_names(std::string(f.bytes));
  }
  return !reader.malformed();
}

}  // namespace weft::server
