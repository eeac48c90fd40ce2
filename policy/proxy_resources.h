// What the compiler produces for one proxy: xDS resources by type and name,
// each with a stable content hash and the source objects that produced it
// (the source map the admin API shows next to a NACK).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/any.pb.h>

namespace weft::policy {

// Who a proxy is, as far as configuration is concerned. Computed by the
// server from the authenticated identity or, on the plaintext port, from the
// node id and metadata (DESIGN.md §5).
struct ProxyIdentity {
  enum class Kind { kProxyless, kSidecar };
  Kind kind = Kind::kProxyless;
  std::string namespace_ = "default";
  std::string service_account = "default";
  std::string ip;  // from the node id, "" when unknown
  // Everything that influences compiled output; proxies with equal keys get
  // identical configuration.
  std::string CacheKey() const;
};

// Any::PackFrom() with deterministic serialization: maps inside (RBAC
// policies, per-filter configs) come out in key order, so that equal
// content always hashes equal.
void PackDeterministic(const google::protobuf::Message& message, google::protobuf::Any& any);

struct Resource {
  std::string name;
  std::shared_ptr<const google::protobuf::Any> body;
  std::string hash;                  // stable content hash (hex)
  std::vector<std::string> sources;  // SourceRef strings of the inputs
};

// type URL -> resource name -> resource.
using ResourcesByName = std::map<std::string, Resource, std::less<>>;
using ResourcesByType = std::map<std::string, ResourcesByName, std::less<>>;

struct ProxyResources {
  ResourcesByType resources;
  // Adds `message` (packed into an Any, hashed deterministically).
  void Add(const google::protobuf::Message& message, const std::string& name,
           std::vector<std::string> sources);
};

}  // namespace weft::policy
