#include "server/sotw_stream.h"

#include <tuple>

#include "policy/resource_types.h"

namespace weft::server {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

bool IsFullStateType(const std::string& type_url) {
  return type_url == policy::kListenerType || type_url == policy::kClusterType;
}

std::vector<std::string> SelectedNames(const Selection& selection) {
  std::vector<std::string> out;
  selection.ForEach([&](const policy::Resource& r) { out.push_back(r.name); });
  return out;
}

Selection Select(TypeResourcesConstSharedPtr base, bool wildcard, NameSetConstSharedPtr names,
                 const Selection* previous) {
  Selection s;
  s.base = std::move(base);
  s.wildcard = wildcard;
  s.names = std::move(names);
  if (!s.base) return s;
  if (wildcard) {
    s.digest = s.base->digest;
    s.count = s.base->resources.size();
    return s;
  }
  const bool same_subscription =
      previous != nullptr && previous->base && !previous->wildcard && previous->names == s.names;
  if (same_subscription && previous->base == s.base) {
    s.digest = previous->digest;
    s.count = previous->count;
    return s;
  }
  if (same_subscription) {
    // Follow the change (shared by every stream that saw the same versions).
    TypeDiffConstSharedPtr diff = s.base->DiffFrom(*previous->base);
    if (diff->changed.size() + diff->removed.size() < s.names->size()) {
      s.digest = previous->digest;
      s.count = previous->count;
      for (const auto& name : diff->changed) {
        if (s.names->count(name) == 0) continue;
        if (const policy::Resource* old = previous->base->Find(name)) {
          s.digest -= ResourceDigest(name, old->hash);
        } else {
          s.count++;
        }
        s.digest += ResourceDigest(name, s.base->Find(name)->hash);
      }
      for (const auto& name : diff->removed) {
        if (s.names->count(name) == 0) continue;
        if (const policy::Resource* old = previous->base->Find(name)) {
          s.digest -= ResourceDigest(name, old->hash);
          s.count--;
        }
      }
      return s;
    }
  }
  std::tie(s.digest, s.count) = s.base->SelectedDigest(s.names);
  return s;
}

SotwStream::Result SotwStream::OnRequest(const DiscoveryRequest& request,
                                         const ProxySnapshot* snapshot, bool names_unchanged) {
  Result result;
  const std::string& type_url = request.type_url();
  TypeState& state = types_[type_url];
  bool force = false;

  if (!request.response_nonce().empty()) {
    if (request.response_nonce() != state.sent_nonce) {
      result.event = Event::kStale;
      return result;
    }
    state.awaiting_ack = false;
    if (request.has_error_detail()) {
      result.event = Event::kNack;
      state.nacked = true;
      state.nack_message = request.error_detail().message();
      state.nacked_version = state.sent_version;
      state.nacked_resources = state.sent_whole ? SelectedNames(state.sent) : state.sent_names;
    } else {
      result.event = Event::kAck;
      state.nacked = false;
      state.nack_message.clear();
      state.nacked_resources.clear();
      state.nacked_version.clear();
      state.acked_version = request.version_info();
      state.acked_mesh_version = state.sent_mesh_version;
      state.acked = state.sent;
    }
  } else {
    // First request for this type on this stream (a reconnecting client may
    // carry the version it already has; it still gets a full answer).
    result.event = Event::kSubscribe;
    state.awaiting_ack = false;
    state.sent_nonce.clear();
    state.sent_version.clear();
    force = true;
  }

  // Subscription update: every request carries the full set of names.
  if (names_unchanged && state.ever_requested) {
    if (snapshot != nullptr) MaybeRespond(type_url, state, *snapshot, force, result.responses);
    return result;
  }
  bool wildcard = false;
  for (const auto& name : request.resource_names()) wildcard |= (name == "*");
  const bool no_names = request.resource_names().empty();
  if (no_names && IsFullStateType(type_url) && (!state.ever_requested || state.wildcard)) {
    wildcard = true;  // legacy wildcard: the first request names nothing, and so do its ACKs
  }
  state.wildcard = wildcard;
  if (wildcard) {
    state.names = EmptyNames();
  } else if (!SameNames(*state.names, request.resource_names())) {
    state.names = InternSortedNames(SortedUniqueNames(request.resource_names()));
  }
  state.ever_requested = true;

  if (snapshot != nullptr) MaybeRespond(type_url, state, *snapshot, force, result.responses);
  return result;
}

std::vector<OutgoingResponse> SotwStream::OnSnapshot(const ProxySnapshot& snapshot) {
  std::vector<OutgoingResponse> out;
  auto respond = [&](const std::string& type_url) {
    auto it = types_.find(type_url);
    if (it != types_.end() && it->second.ever_requested) {
      MaybeRespond(type_url, it->second, snapshot, /*force=*/it->second.sent_nonce.empty(), out);
    }
  };
  for (const std::string& type : policy::PushOrderTypeUrls()) respond(type);
  for (auto& [type_url, state] : types_) {
    bool known = false;
    for (auto t : policy::kPushOrder) known |= (t == type_url);
    if (!known) respond(type_url);
  }
  return out;
}

void SotwStream::MaybeRespond(const std::string& type_url, TypeState& state,
                              const ProxySnapshot& snapshot, bool force,
                              std::vector<OutgoingResponse>& out) {
  if (state.awaiting_ack) return;  // the ACK/NACK of the outstanding one re-opens the watch
  TypeResourcesConstSharedPtr base = snapshot.TypePtr(type_url);
  if (!force && base && base == state.sent.base && state.sent.wildcard == state.wildcard &&
      state.sent.names == state.names) {
    return;  // the same resources and subscription as last sent: the same version
  }
  Selection next = Select(std::move(base), state.wildcard, state.names, &state.sent);
  const std::string version = DigestVersion(type_url, next.digest);
  if (!force && version == state.sent_version) return;  // nothing new (also: never resend a NACKed set)

  OutgoingResponse response;
  response.base = next.base;
  bool whole = force || IsFullStateType(type_url);
  if (whole) {
    if (next.base && (next.wildcard || next.count == next.base->resources.size())) {
      response.all = true;
    } else {
      response.names = SelectedNames(next);
    }
  } else {
    // Routes, endpoints, secrets: only what the client does not hold yet.
    auto add_if_new = [&](const policy::Resource& r) {
      const policy::Resource* held = state.sent.Find(r.name);
      if (held == nullptr || held->hash != r.hash) response.names.push_back(r.name);
    };
    const bool same_subscription = next.base && state.sent.base && next.wildcard == state.sent.wildcard &&
                                   next.names == state.sent.names;
    if (same_subscription && next.base == state.sent.base) {
      // Nothing changed for it.
    } else if (same_subscription) {
      for (const auto& name : next.base->DiffFrom(*state.sent.base)->changed) {
        if (const policy::Resource* r = next.Find(name)) add_if_new(*r);
      }
    } else {
      next.ForEach(add_if_new);
    }
    if (response.names.empty()) {
      // Only removals, which SotW cannot express for these types: the client
      // keeps the extra resources unused. Nothing to send or to acknowledge.
      state.sent_version = version;
      state.sent = next;
      if (!state.nacked) {
        state.acked_version = version;
        state.acked = next;
      }
      return;
    }
  }
  response.type_url = type_url;
  response.version = version;
  response.nonce = std::to_string(next_nonce_++);
  state.sent_version = version;
  state.sent_nonce = response.nonce;
  state.sent_mesh_version = snapshot.mesh_version;
  state.sent = std::move(next);
  state.sent_whole = whole;
  state.sent_names = whole ? std::vector<std::string>{} : response.names;
  state.awaiting_ack = true;
  out.push_back(std::move(response));
}

}  // namespace weft::server
