#include "server/outgoing_response.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/slice.h>

#include "common/wire_format.h"

namespace weft::server {
namespace {

// A per-stream string field; empty ones are left out.
void AppendString(std::string& out, int field, const std::string& value) {
  if (!value.empty()) common::AppendLengthDelimited(out, field, value);
}

// A slice of the shared encoding that keeps its TypeResources alive.
grpc::Slice SharedSlice(const TypeResourcesConstSharedPtr& base, const char* data, size_t len) {
  auto* holder = new TypeResourcesConstSharedPtr(base);
  return grpc::Slice(const_cast<char*>(data), len,
                     [](void* p) { delete static_cast<TypeResourcesConstSharedPtr*>(p); }, holder);
}

}  // namespace

grpc::ByteBuffer OutgoingResponse::Encode() const {
  // Per-stream fields first; field order does not matter on the wire.
  std::string head;
  if (delta) {
    AppendString(head, 1, version);  // system_version_info
    AppendString(head, 4, type_url);
    AppendString(head, 5, nonce);
    for (const auto& r : removed) AppendString(head, 6, r);
  } else {
    AppendString(head, 1, version);  // version_info
    AppendString(head, 4, type_url);
    AppendString(head, 5, nonce);
  }
  std::vector<grpc::Slice> slices;
  slices.emplace_back(head);
  if (base) {
    const TypeResources::Encoding& enc = base->Encoded(delta);
    const std::string& blob = enc.blob;
    if (all) {
      if (!blob.empty()) slices.push_back(SharedSlice(base, blob.data(), blob.size()));
    } else {
      const auto& spans = enc.spans;
      for (const auto& name : names) {
        auto it = spans.find(name);
        if (it == spans.end()) continue;
        slices.push_back(SharedSlice(base, blob.data() + it->second.first, it->second.second));
      }
    }
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

envoy::service::discovery::v3::DiscoveryResponse OutgoingResponse::ToSotw() const {
  envoy::service::discovery::v3::DiscoveryResponse out;
  grpc::ByteBuffer bb = Encode();
  grpc::ProtoBufferReader reader(&bb);
  out.ParseFromZeroCopyStream(&reader);
  return out;
}

envoy::service::discovery::v3::DeltaDiscoveryResponse OutgoingResponse::ToDelta() const {
  envoy::service::discovery::v3::DeltaDiscoveryResponse out;
  grpc::ByteBuffer bb = Encode();
  grpc::ProtoBufferReader reader(&bb);
  out.ParseFromZeroCopyStream(&reader);
  return out;
}

}  // namespace weft::server
