// Reads a raw state-of-the-world DiscoveryRequest without materializing its
// resource_names. Every SotW request repeats the client's whole
// subscription — an Envoy ACK for endpoints names every cluster — so
// parsing thousands of names per ACK dominated weftd's work at scale. The
// names are fingerprinted from their wire bytes and parsed only when the
// fingerprint differs from the last one applied for that type.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <string>

#include "envoy/service/discovery/v3/discovery.pb.h"

namespace weft::server {

struct RawSotwRequest {
  // Every field but resource_names (which holds names only after ParseNames).
  envoy::service::discovery::v3::DiscoveryRequest request;
  uint64_t names_fingerprint = 0;  // of the resource_names bytes, in order (this process only)
  std::string bytes;               // the whole message, for ParseNames
  std::string rest;                // the other fields (a buffer kept for reuse)
};

// False when the bytes are not a DiscoveryRequest.
bool ReadSotwRequest(const grpc::ByteBuffer& buffer, RawSotwRequest& out);
// Adds the resource_names to out.request.
bool ParseNames(RawSotwRequest& out);

}  // namespace weft::server
