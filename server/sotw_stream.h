// The state-of-the-world ADS protocol state of one stream, without gRPC:
// subscriptions per type, versions and nonces, ACK/NACK bookkeeping, and the
// decision of what to send. The gRPC reactor feeds it requests and new
// snapshots and writes out what it returns; tests drive it directly.
//
// Rules (xDS protocol, state of the world):
// - A response is sent for a type when the client has no response of that
//   type outstanding (the watch is open) and what it would hold differs from
//   what was last sent; the first request of a type always gets one.
// - A request whose response_nonce is not the last nonce sent for its type
//   is stale and ignored; the client's next ACK carries its current names.
// - A NACK (error_detail set) is recorded and never answered by resending the
//   same thing; a newer snapshot is sent as soon as it exists.
// - On an update, types are answered in make-before-break order: clusters,
//   endpoints, listeners, routes, secrets.
// - Listeners and clusters are sent whole (a missing one is a deletion);
//   routes, endpoints and secrets only when their content changed or they
//   are newly requested.
//
// Memory per stream is O(types), not O(resources): what a client holds is a
// Selection (a shared TypeResources plus the shared, interned set of names it
// subscribed to), and an update that follows the last one sent is handled in
// time proportional to what changed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "server/name_set.h"
#include "server/outgoing_response.h"
#include "server/proxy_snapshot.h"

namespace weft::server {

// Resources of one type that a subscription selects from a TypeResources.
struct Selection {
  TypeResourcesConstSharedPtr base;  // null: nothing
  bool wildcard = false;
  NameSetConstSharedPtr names = EmptyNames();
  uint64_t digest = 0;  // ResourceDigest sum over the selected resources
  size_t count = 0;

  bool Selects(const std::string& name) const { return wildcard || names->count(name) > 0; }
  // The selected resource of that name, or null.
  const policy::Resource* Find(const std::string& name) const {
    return base && Selects(name) ? base->Find(name) : nullptr;
  }
  // Calls fn(const policy::Resource&) for each selected resource, by name.
  template <typename Fn>
  void ForEach(Fn fn) const {
    if (!base) return;
    if (wildcard || count == base->resources.size()) {
      // Everything (a named subscription that selects every resource is
      // the common case: Envoy names every cluster's endpoints).
      for (const policy::Resource* r : base->Ordered()) fn(*r);
    } else if (names->size() * 8 < base->resources.size()) {
      for (const auto& name : *names) {
        if (const policy::Resource* r = base->Find(name)) fn(*r);
      }
    } else {
      base->ForEachNamed(*names, fn);  // one merge instead of a lookup per name
    }
  }
};

// Selects from `base` for a subscription; `previous` (what was selected from
// the predecessor of `base` for the same subscription) makes it O(change).
Selection Select(TypeResourcesConstSharedPtr base, bool wildcard, NameSetConstSharedPtr names,
                 const Selection* previous);

struct TypeState {
  // Subscription.
  bool wildcard = false;
  NameSetConstSharedPtr names = EmptyNames();
  bool ever_requested = false;

  // The last response.
  std::string sent_version;
  std::string sent_nonce;
  uint64_t sent_mesh_version = 0;
  bool awaiting_ack = false;
  Selection sent;  // what the client holds once it ACKs it
  // The names the last response carried, when it was not the whole
  // selection (for NACK reports).
  bool sent_whole = true;
  std::vector<std::string> sent_names;

  // What the client accepted last.
  std::string acked_version;
  uint64_t acked_mesh_version = 0;
  Selection acked;

  // The last response was rejected.
  bool nacked = false;
  std::string nack_message;
  std::string nacked_version;
  std::vector<std::string> nacked_resources;  // names in the rejected response
};

class SotwStream {
 public:
  enum class Event { kNone, kSubscribe, kAck, kNack, kStale };

  struct Result {
    Event event = Event::kNone;
    std::vector<OutgoingResponse> responses;
  };

  // Handles one DiscoveryRequest. `snapshot` is the node's current snapshot
  // (nullptr when there is none yet: subscriptions are recorded, nothing is
  // sent). `names_unchanged`: the caller knows the request repeats the
  // names last applied for its type and left resource_names unparsed.
  Result OnRequest(const envoy::service::discovery::v3::DiscoveryRequest& request,
                   const ProxySnapshot* snapshot, bool names_unchanged = false);

  // A new snapshot for this node: responses for every subscribed type whose
  // watch is open and whose content changed.
  std::vector<OutgoingResponse> OnSnapshot(const ProxySnapshot& snapshot);

  const std::map<std::string, TypeState>& types() const { return types_; }

 private:
  // Appends a response for `type_url` to `out` when one is due.
  void MaybeRespond(const std::string& type_url, TypeState& state, const ProxySnapshot& snapshot,
                    bool force, std::vector<OutgoingResponse>& out);

  std::map<std::string, TypeState> types_;
  uint64_t next_nonce_ = 1;
};

// Listeners and clusters: a state-of-the-world response holds all of them and
// a missing one is deleted; only these have the legacy "empty = wildcard".
bool IsFullStateType(const std::string& type_url);

// The names of all resources a selection holds (for reports; O(selection)).
std::vector<std::string> SelectedNames(const Selection& selection);

}  // namespace weft::server
