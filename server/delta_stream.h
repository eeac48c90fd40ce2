// The incremental (delta) ADS protocol state of one stream, without gRPC.
// The gRPC reactor feeds it requests and snapshots and writes what it
// returns; tests drive it directly.
//
// Rules (xDS protocol, incremental variant):
// - Subscriptions are deltas: resource_names_subscribe adds, ..._unsubscribe
//   removes; "*" (or, for listeners and clusters, an empty first request) is
//   the wildcard. They are never ignored, whatever the nonce.
// - The server tracks the version of every resource the client has. A
//   response carries exactly the resources whose version differs, and
//   removed_resources for names the client has (or asked for) that do not
//   exist: deletions, and subscriptions to unknown names, so that the client
//   need not wait for a timeout.
// - An unsubscribed resource is forgotten, so subscribing again resends it;
//   a deleted resource is forgotten, so adding it again resends it.
// - initial_resource_versions (a reconnecting client) seed what the client
//   has: only what differs is sent.
// - Responses are not held back while one is unanswered: each carries a nonce,
//   and an ACK or NACK names the one it answers. A NACK is recorded and never
//   answered by resending the same versions; the next change goes out at once.
//
// What the client holds is represented as a Selection (the shared
// TypeResources last sent, restricted to its subscription), so memory per
// stream is O(types) and an update that follows the last one costs O(change).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "server/proxy_snapshot.h"
#include "server/sotw_stream.h"

namespace weft::server {

class DeltaStream {
 public:
  enum class Event { kNone, kSubscribe, kAck, kNack, kStale };

  struct Result {
    Event event = Event::kNone;
    std::vector<OutgoingResponse> responses;
  };

  Result OnRequest(const envoy::service::discovery::v3::DeltaDiscoveryRequest& request,
                   const ProxySnapshot* snapshot);
  std::vector<OutgoingResponse> OnSnapshot(const ProxySnapshot& snapshot);

  // The admin API's view, shaped like the SotW one: versions are the digest
  // of the set of resource versions the client holds.
  const std::map<std::string, TypeState>& types() const { return views_; }

 private:
  struct SentResponse {
    std::string nonce;
    uint64_t mesh_version = 0;
    std::vector<std::string> names;  // resources and removals it carried
    bool all = false;                // ...or every resource the client holds
    std::string version;
    Selection held;  // what the client holds once it applies it
  };
  struct State {
    bool wildcard = false;
    bool ever_requested = false;
    NameSetConstSharedPtr names = EmptyNames();
    // The client holds held.base's resources selected by the *current*
    // subscription (unsubscribed names are forgotten at once).
    Selection held;
    uint64_t held_mesh_version = 0;
    // A reconnecting client's initial_resource_versions, until the first
    // response replaces them.
    std::map<std::string, std::string, std::less<>> initial;
    std::deque<SentResponse> outstanding;  // unanswered responses, oldest first
    std::string last_nonce;
  };

  // False when nothing changed for the type (its view stays as it is).
  bool MaybeRespond(const std::string& type_url, State& state, const ProxySnapshot& snapshot,
                    const std::vector<std::string_view>& newly_requested, std::vector<OutgoingResponse>& out);
  void UpdateView(const std::string& type_url, const State& state);

  std::map<std::string, State> states_;
  std::map<std::string, TypeState> views_;
  uint64_t next_nonce_ = 1;
};

}  // namespace weft::server
