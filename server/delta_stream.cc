#include "server/delta_stream.h"

#include "policy/resource_types.h"

namespace weft::server {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;

DeltaStream::Result DeltaStream::OnRequest(const DeltaDiscoveryRequest& request,
                                           const ProxySnapshot* snapshot) {
  Result result;
  const std::string& type_url = request.type_url();
  State& state = states_[type_url];
  TypeState& view = views_[type_url];

  if (request.response_nonce().empty()) {
    result.event = Event::kSubscribe;
  } else {
    auto it = state.outstanding.begin();
    while (it != state.outstanding.end() && it->nonce != request.response_nonce()) ++it;
    if (it == state.outstanding.end()) {
      result.event = Event::kStale;  // its subscription changes still count below
    } else {
      SentResponse answered = std::move(*it);
      // The client handles responses in order: older ones are answered too.
      state.outstanding.erase(state.outstanding.begin(), it + 1);
      if (request.has_error_detail()) {
        result.event = Event::kNack;
        view.nacked = true;
        view.nack_message = request.error_detail().message();
        view.nacked_resources = answered.all ? SelectedNames(answered.held) : std::move(answered.names);
        view.nacked_version = answered.version;
      } else {
        result.event = Event::kAck;
        view.nacked = false;
        view.nack_message.clear();
        view.nacked_resources.clear();
        view.nacked_version.clear();
        view.acked_version = answered.version;
        view.acked_mesh_version = answered.mesh_version;
        view.acked = answered.held;
      }
    }
  }

  // A reconnecting client says what it already has.
  if (!state.ever_requested) {
    for (const auto& [name, version] : request.initial_resource_versions()) state.initial[name] = version;
  }

  std::set<std::string> newly_requested;
  bool names_changed = false;
  const bool was_wildcard = state.wildcard;
  if (!request.resource_names_subscribe().empty() || !request.resource_names_unsubscribe().empty()) {
    NameSet names = *state.names;  // ACKs carry no names: only copy for a change
    for (const auto& name : request.resource_names_subscribe()) {
      if (name == "*") {
        state.wildcard = true;
      } else {
        names_changed |= names.insert(name).second;
        newly_requested.insert(name);
      }
    }
    for (const auto& name : request.resource_names_unsubscribe()) {
      if (name == "*") {
        state.wildcard = false;
      } else {
        names_changed |= names.erase(name) > 0;
        newly_requested.erase(name);
        state.initial.erase(name);
      }
    }
    if (names_changed) state.names = InternNames(std::move(names));
  }
  if (!state.ever_requested && request.resource_names_subscribe().empty() &&
      IsFullStateType(type_url)) {
    state.wildcard = true;  // legacy wildcard: the first request names nothing
  }
  state.ever_requested = true;
  if (names_changed || was_wildcard != state.wildcard) {
    // What the client holds, under its new subscription (forgotten names drop out).
    state.held = Select(state.held.base, state.wildcard, state.names, nullptr);
  }

  if (snapshot != nullptr) MaybeRespond(type_url, state, *snapshot, newly_requested, result.responses);
  UpdateView(type_url, state);
  return result;
}

std::vector<OutgoingResponse> DeltaStream::OnSnapshot(const ProxySnapshot& snapshot) {
  std::vector<OutgoingResponse> out;
  auto respond = [&](const std::string& type_url) {
    auto it = states_.find(type_url);
    if (it == states_.end() || !it->second.ever_requested) return;
    MaybeRespond(type_url, it->second, snapshot, {}, out);
    UpdateView(type_url, it->second);
  };
  for (auto type : policy::kPushOrder) respond(std::string(type));
  for (const auto& [type_url, state] : states_) {
    bool known = false;
    for (auto t : policy::kPushOrder) known |= (t == type_url);
    if (!known) respond(type_url);
  }
  return out;
}

void DeltaStream::MaybeRespond(const std::string& type_url, State& state,
                               const ProxySnapshot& snapshot,
                               const std::set<std::string>& newly_requested,
                               std::vector<OutgoingResponse>& out) {
  static const TypeResourcesConstSharedPtr* kEmpty =
      new TypeResourcesConstSharedPtr(std::make_shared<TypeResources>());
  TypeResourcesConstSharedPtr base = snapshot.TypePtr(type_url);
  if (!base) base = *kEmpty;
  if (base == state.held.base && newly_requested.empty()) return;  // nothing new
  Selection next = Select(base, state.wildcard, state.names, &state.held);

  OutgoingResponse response;
  response.delta = true;
  response.base = base;
  std::set<std::string> listed;
  auto send = [&](const policy::Resource& r) {
    if (listed.insert(r.name).second) response.names.push_back(r.name);
  };
  auto remove = [&](const std::string& name) {
    if (listed.insert(name).second) response.removed.push_back(name);
  };
  // The version the client has of `name`, or null.
  auto held_hash = [&](const std::string& name) -> const std::string* {
    if (!state.held.base) {
      auto it = state.initial.find(name);
      return it == state.initial.end() ? nullptr : &it->second;
    }
    const policy::Resource* r = state.held.Find(name);
    return r == nullptr ? nullptr : &r->hash;
  };

  const bool follows = state.held.base && base->previous_id != 0 && base->previous_id == state.held.base->id;
  if (follows) {
    for (const auto& name : base->changed) {
      if (const policy::Resource* r = next.Find(name)) send(*r);
    }
    for (const auto& name : base->removed) {
      if (state.held.Find(name) != nullptr) remove(name);
    }
  } else {
    next.ForEach([&](const policy::Resource& r) {
      const std::string* have = held_hash(r.name);
      if (have == nullptr || *have != r.hash) send(r);
    });
    if (state.held.base) {
      state.held.ForEach([&](const policy::Resource& r) {
        if (base->Find(r.name) == nullptr) remove(r.name);
      });
    } else {
      for (const auto& [name, version] : state.initial) {
        if (base->Find(name) == nullptr) remove(name);
      }
    }
  }
  // Newly subscribed names are answered at once: the resource, or its absence.
  for (const auto& name : newly_requested) {
    if (const policy::Resource* r = base->Find(name)) {
      send(*r);
    } else {
      remove(name);
    }
  }
  state.held = next;
  state.held_mesh_version = snapshot.mesh_version;
  state.initial.clear();
  if (response.names.empty() && response.removed.empty()) return;

  response.type_url = type_url;
  response.nonce = std::to_string(next_nonce_++);
  response.version = std::to_string(snapshot.mesh_version);
  SentResponse sent;
  if (response.names.size() == base->resources.size()) {
    // The whole set: sent as the shared encoding in one piece, and
    // remembered without a per-stream copy of every name.
    response.all = true;
    response.names.clear();
    sent.all = true;
    sent.names = response.removed;
  } else {
    sent.names = response.names;
    sent.names.insert(sent.names.end(), response.removed.begin(), response.removed.end());
  }
  sent.nonce = response.nonce;
  sent.mesh_version = snapshot.mesh_version;
  sent.version = DigestVersion(type_url, next.digest);
  sent.held = next;
  state.outstanding.push_back(std::move(sent));
  // Bound the bookkeeping for a client that never answers.
  while (state.outstanding.size() > 16) state.outstanding.pop_front();
  state.last_nonce = response.nonce;
  out.push_back(std::move(response));
}

void DeltaStream::UpdateView(const std::string& type_url, const State& state) {
  TypeState& view = views_[type_url];
  view.wildcard = state.wildcard;
  view.names = state.names;
  view.ever_requested = state.ever_requested;
  view.sent_nonce = state.last_nonce;
  view.awaiting_ack = !state.outstanding.empty();
  view.sent = state.held;
  view.sent_version = DigestVersion(type_url, state.held.digest);
  if (!state.outstanding.empty()) view.sent_mesh_version = state.outstanding.back().mesh_version;
  if (state.last_nonce.empty() && !view.nacked && state.held.base) {
    // Nothing had to be sent: a reconnecting client already held it all.
    view.acked_version = view.sent_version;
    view.acked = state.held;
    view.acked_mesh_version = view.sent_mesh_version = state.held_mesh_version;
  }
}

}  // namespace weft::server
