#include "server/delta_stream.h"

#include <algorithm>
#include <cassert>
#include <iterator>

#include "policy/resource_types.h"

namespace weft::server {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;

namespace {

// Removes "*" from sorted names; true when it was there.
bool TakeWildcard(std::vector<std::string_view>& sorted) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), std::string_view("*"));
  if (it == sorted.end() || *it != "*") return false;
  sorted.erase(it);
  return true;
}

}  // namespace

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

  // Subscription changes, as sorted name lists (views into the request).
  std::vector<std::string_view> newly_requested;
  bool names_changed = false;
  const bool was_wildcard = state.wildcard;
  if (!request.resource_names_subscribe().empty() || !request.resource_names_unsubscribe().empty()) {
    std::vector<std::string_view> subscribe = SortedUniqueNames(request.resource_names_subscribe());
    std::vector<std::string_view> unsubscribe = SortedUniqueNames(request.resource_names_unsubscribe());
    if (TakeWildcard(subscribe)) state.wildcard = true;
    if (TakeWildcard(unsubscribe)) state.wildcard = false;
    // Unsubscribing wins over subscribing in the same request.
    std::set_difference(subscribe.begin(), subscribe.end(), unsubscribe.begin(), unsubscribe.end(),
                        std::back_inserter(newly_requested));
    const NameSetConstSharedPtr old_names = state.names;  // keeps the views below alive
    std::vector<std::string_view> with_new;
    std::set_union(old_names->begin(), old_names->end(), newly_requested.begin(), newly_requested.end(),
                   std::back_inserter(with_new));
    std::vector<std::string_view> names;
    std::set_difference(with_new.begin(), with_new.end(), unsubscribe.begin(), unsubscribe.end(),
                        std::back_inserter(names));
    names_changed =
        names.size() != old_names->size() || !std::equal(names.begin(), names.end(), old_names->begin());
    if (names_changed) state.names = InternSortedNames(names);
    for (std::string_view name : unsubscribe) {
      if (auto it = state.initial.find(name); it != state.initial.end()) state.initial.erase(it);
    }
  }
  if (!state.ever_requested && request.resource_names_subscribe().empty() && IsFullStateType(type_url)) {
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
    if (MaybeRespond(type_url, it->second, snapshot, {}, out)) UpdateView(type_url, it->second);
  };
  for (const std::string& type : policy::PushOrderTypeUrls()) respond(type);
  for (const auto& [type_url, state] : states_) {
    bool known = false;
    for (auto t : policy::kPushOrder) known |= (t == type_url);
    if (!known) respond(type_url);
  }
  return out;
}

bool DeltaStream::MaybeRespond(const std::string& type_url, State& state, const ProxySnapshot& snapshot,
                               const std::vector<std::string_view>& newly_requested,
                               std::vector<OutgoingResponse>& out) {
  static const TypeResourcesConstSharedPtr* kEmpty =
      new TypeResourcesConstSharedPtr(std::make_shared<TypeResources>());
  TypeResourcesConstSharedPtr base = snapshot.TypePtr(type_url);
  if (!base) base = *kEmpty;
  if (base == state.held.base && newly_requested.empty()) return false;  // nothing new
  Selection next = Select(base, state.wildcard, state.names, &state.held);

  // Each name at most once: sends and removals below never overlap, only
  // the newly requested names can repeat them.
  std::vector<const policy::Resource*> send;
  std::vector<std::string> remove;
  if (state.held.base) {
    // What differs from what the client holds (held follows the current
    // subscription, as next does).
    if (base != state.held.base) {
      TypeDiffConstSharedPtr diff = base->DiffFrom(*state.held.base);
      for (const auto& name : diff->changed) {
        if (const policy::Resource* r = next.Find(name)) send.push_back(r);
      }
      for (const auto& name : diff->removed) {
        if (state.held.Find(name) != nullptr) remove.push_back(name);
      }
    }
  } else {
    // A new stream: what the client said it has (a reconnect) or nothing.
    next.ForEach([&](const policy::Resource& r) {
      auto have = state.initial.find(r.name);
      if (have == state.initial.end() || have->second != r.hash) send.push_back(&r);
    });
    for (const auto& [name, version] : state.initial) {
      if (base->Find(name) == nullptr) remove.push_back(name);
    }
  }
  // Newly subscribed names are answered at once: the resource, or its absence.
  // send and remove are each in name order (selections, diffs and initial
  // versions all are), and so are the newly requested names: one merge
  // finds the names neither lists yet, without hashing every name (a new
  // stream's first request names them all).
  if (!newly_requested.empty()) {
    assert(std::is_sorted(send.begin(), send.end(), [](const policy::Resource* a, const policy::Resource* b) {
      return a->name < b->name;
    }));
    assert(std::is_sorted(remove.begin(), remove.end()));
    const size_t sent = send.size(), removed = remove.size();
    size_t s = 0, d = 0;
    for (std::string_view name : newly_requested) {
      while (s < sent && std::string_view(send[s]->name) < name) ++s;
      while (d < removed && std::string_view(remove[d]) < name) ++d;
      if ((s < sent && send[s]->name == name) || (d < removed && remove[d] == name)) continue;
      if (const policy::Resource* r = base->Find(name)) {
        send.push_back(r);
      } else {
        remove.emplace_back(name);
      }
    }
  }
  OutgoingResponse response;
  response.delta = true;
  response.base = base;
  response.removed = std::move(remove);
  // The whole set is sent as the shared encoding in one piece, and
  // remembered without a per-stream copy of every name.
  const bool all = !send.empty() && send.size() == base->resources.size();
  if (!all) {
    response.names.reserve(send.size());
    for (const policy::Resource* r : send) response.names.push_back(r->name);
  }
  state.held = next;
  state.held_mesh_version = snapshot.mesh_version;
  state.initial.clear();
  if (send.empty() && response.removed.empty()) return true;

  response.type_url = type_url;
  response.nonce = std::to_string(next_nonce_++);
  response.version = std::to_string(snapshot.mesh_version);
  SentResponse sent;
  if (all) {
    response.all = true;
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
  return true;
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
