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
  out.bytes.clear();  // keeps its capacity when `out` is reused
  out.bytes.reserve(buffer.Length());
  for (const auto& s : slices) out.bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  out.request.Clear();
  // The names' fields are hashed as raw runs (tags and lengths included, so
  // the list's order and boundaries count); clients write them back to back,
  // so a whole subscription is usually one run and one hash.
  const std::string_view all(out.bytes);
  uint64_t fingerprint = 0;
  size_t run_begin = 0;
  size_t run_end = 0;
  auto flush = [&] {
    if (run_end > run_begin) {
      fingerprint = common::FastHash64(all.substr(run_begin, run_end - run_begin), fingerprint);
    }
    run_begin = run_end = 0;
  };
  std::string& rest = out.rest;
  rest.clear();
  common::WireReader reader(all);
  common::WireReader::Field f;
  while (reader.Next(f)) {
    if (f.number == kResourceNamesField) {
      if (f.begin != run_end || run_end == 0) {
        flush();
        run_begin = f.begin;
      }
      if (f.wire_type == 2) reader.SkipRepeated(kResourceNamesField);
      run_end = reader.position();
    } else {
      rest.append(out.bytes, f.begin, f.end - f.begin);
    }
  }
  if (reader.malformed()) return false;
  flush();
  out.names_fingerprint = fingerprint;
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
