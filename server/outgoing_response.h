// A response an ADS stream decided to send, before it is put on the wire:
// which resources of a shared TypeResources, plus the per-stream fields
// (type, version, nonce, removals). Encode() builds the gRPC message without
// copying resource bytes: every resource is pre-encoded once per distinct
// TypeResources (shared by all proxies with that configuration), and the
// message is a chain of slices pointing into that shared encoding. This is
// what lets thousands of streams receive the same configuration without
// thousands of copies of it.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <string>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "server/proxy_snapshot.h"

namespace weft::server {

struct OutgoingResponse {
  bool delta = false;
  std::string type_url;
  std::string version;  // SotW version_info; delta system_version_info
  std::string nonce;
  TypeResourcesConstSharedPtr base;
  bool all = false;                  // every resource of base
  std::vector<std::string> names;    // otherwise these resources of base
  std::vector<std::string> removed;  // delta: removed_resources

  size_t ResourceCount() const { return all ? (base ? base->resources.size() : 0) : names.size(); }
  // The wire form (zero-copy for resource bytes).
  grpc::ByteBuffer Encode() const;
  // Decoded forms, for tests and logs.
  envoy::service::discovery::v3::DiscoveryResponse ToSotw() const;
  envoy::service::discovery::v3::DeltaDiscoveryResponse ToDelta() const;
};

}  // namespace weft::server
