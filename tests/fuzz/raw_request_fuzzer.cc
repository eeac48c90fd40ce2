// libFuzzer target: weftd's raw state-of-the-world DiscoveryRequest reader
// on the bytes of a gRPC message from an xDS client: ReadSotwRequest (wire
// walk, names fingerprint, protobuf parse of the rest) and ParseNames.
#include <grpc/grpc.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "server/raw_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialized = [] {
    grpc_init();
    return true;
  }();
  (void)initialized;
  // Two slices, split in the middle, as a message may arrive.
  const size_t half = size / 2;
  grpc::Slice slices[2] = {grpc::Slice(data, half), grpc::Slice(data + half, size - half)};
  grpc::ByteBuffer buffer(slices, 2);
  weft::server::RawSotwRequest request;
  if (!weft::server::ReadSotwRequest(buffer, request)) return 0;
  if (request.bytes.size() != size) std::abort();
  if (weft::server::ParseNames(request)) (void)request.request.resource_names_size();
  return 0;
}
