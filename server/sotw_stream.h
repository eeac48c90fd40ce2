// The state-of-the-world ADS protocol state of one stream, without gRPC:
// subscriptions per type, versions and nonces, ACK/NACK bookkeeping, and the
// decision of what to send. The gRPC reactor feeds it requests and new
// snapshots and writes out what it returns; tests drive it directly.
//
// Rules (xDS protocol, state of the world):
// - A response is sent for a type when the client has no response of that
//   type outstanding (the watch is open) and what it would receive differs
//   from what was last sent; the first request of a type always gets one.
// - A request whose response_nonce is not the last nonce sent for its type
//   is stale and ignored; the client's next ACK carries its current names.
// - A NACK (error_detail set) is recorded and never answered by resending the
//   same thing; a newer snapshot is sent as soon as it exists.
// - On an update, types are answered in make-before-break order: clusters,
//   endpoints, listeners, routes, secrets.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "server/proxy_snapshot.h"

namespace weft::server {

struct TypeState {
  bool wildcard = false;
  std::set<std::string> names;  // explicit subscriptions (when not wildcard)
  bool ever_requested = false;

  std::string sent_version;     // version_info of the last response
  std::string sent_nonce;
  uint64_t sent_mesh_version = 0;
  bool awaiting_ack = false;    // a response is outstanding
  std::vector<policy::Resource> sent_resources;

  std::string acked_version;    // the version the client last accepted
  uint64_t acked_mesh_version = 0;
  std::vector<policy::Resource> acked_resources;
  bool nacked = false;          // the last response was rejected
  std::string nack_message;
  std::vector<std::string> nacked_resources;  // names in the rejected response
  std::string nacked_version;
};

class SotwStream {
 public:
  enum class Event { kNone, kSubscribe, kAck, kNack, kStale };

  struct Result {
    Event event = Event::kNone;
    std::vector<envoy::service::discovery::v3::DiscoveryResponse> responses;
  };

  // Handles one DiscoveryRequest. `snapshot` is the node's current snapshot
  // (nullptr when there is none yet: subscriptions are recorded, nothing is
  // sent).
  Result OnRequest(const envoy::service::discovery::v3::DiscoveryRequest& request,
                   const ProxySnapshot* snapshot);

  // A new snapshot for this node: responses for every subscribed type whose
  // watch is open and whose content changed.
  std::vector<envoy::service::discovery::v3::DiscoveryResponse> OnSnapshot(
      const ProxySnapshot& snapshot);

  const std::map<std::string, TypeState>& types() const { return types_; }

 private:
  // Appends a response for `type_url` to `out` when one is due.
  void MaybeRespond(const std::string& type_url, TypeState& state, const ProxySnapshot& snapshot,
                    bool force, std::vector<envoy::service::discovery::v3::DiscoveryResponse>& out);

  std::map<std::string, TypeState> types_;
  uint64_t next_nonce_ = 1;
};

// The resources of `type_url` that a subscription selects, sorted by name,
// and the version string of exactly that set.
std::vector<policy::Resource> SelectResources(const TypeState& state, const std::string& type_url,
                                              const ProxySnapshot& snapshot, std::string* version);

}  // namespace weft::server
