#include "server/sotw_stream.h"

#include "common/hash.h"
#include "policy/resource_types.h"

namespace weft::server {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

namespace {

bool IsFullStateType(const std::string& type_url) {
  // Listeners and clusters: a SotW response holds all of them, and a missing
  // one is deleted; only these types have the legacy "empty list = wildcard".
  return type_url == policy::kListenerType || type_url == policy::kClusterType;
}

}  // namespace

std::vector<policy::Resource> SelectResources(const TypeState& state, const std::string& type_url,
                                              const ProxySnapshot& snapshot, std::string* version) {
  std::vector<policy::Resource> selected;
  auto it = snapshot.resources.find(type_url);
  if (it != snapshot.resources.end()) {
    if (state.wildcard) {
      for (const auto& [name, r] : it->second) selected.push_back(r);
    } else {
      for (const auto& name : state.names) {
        auto r = it->second.find(name);
        if (r != it->second.end()) selected.push_back(r->second);
      }
    }
  }
  common::StableHasher hasher;
  hasher.Add(type_url);
  for (const auto& r : selected) hasher.Add(r.name).Add(r.hash);
  *version = hasher.Hex();
  return selected;
}

SotwStream::Result SotwStream::OnRequest(const DiscoveryRequest& request,
                                         const ProxySnapshot* snapshot) {
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
      state.nacked_resources.clear();
      for (const auto& r : state.sent_resources) state.nacked_resources.push_back(r.name);
    } else {
      result.event = Event::kAck;
      state.nacked = false;
      state.nack_message.clear();
      state.nacked_resources.clear();
      state.nacked_version.clear();
      state.acked_version = request.version_info();
      state.acked_mesh_version = state.sent_mesh_version;
      state.acked_resources = state.sent_resources;
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
  std::set<std::string> names(request.resource_names().begin(), request.resource_names().end());
  bool wildcard = names.count("*") > 0;
  names.erase("*");
  if (!wildcard && names.empty() && !state.ever_requested && IsFullStateType(type_url)) {
    wildcard = true;  // legacy wildcard: the first request names nothing
  }
  if (!wildcard && names.empty() && state.wildcard && IsFullStateType(type_url)) {
    wildcard = true;  // a wildcard subscriber keeps sending empty lists
  }
  state.wildcard = wildcard;
  state.names = std::move(names);
  state.ever_requested = true;

  if (snapshot != nullptr) MaybeRespond(type_url, state, *snapshot, force, result.responses);
  return result;
}

std::vector<DiscoveryResponse> SotwStream::OnSnapshot(const ProxySnapshot& snapshot) {
  std::vector<DiscoveryResponse> out;
  auto respond = [&](const std::string& type_url) {
    auto it = types_.find(type_url);
    if (it != types_.end() && it->second.ever_requested) {
      MaybeRespond(type_url, it->second, snapshot, /*force=*/it->second.sent_nonce.empty(), out);
    }
  };
  for (auto type : policy::kPushOrder) respond(std::string(type));
  for (auto& [type_url, state] : types_) {
    bool known = false;
    for (auto t : policy::kPushOrder) known |= (t == type_url);
    if (!known) respond(type_url);
  }
  return out;
}

void SotwStream::MaybeRespond(const std::string& type_url, TypeState& state,
                              const ProxySnapshot& snapshot, bool force,
                              std::vector<DiscoveryResponse>& out) {
  if (state.awaiting_ack) return;  // the ACK/NACK of the outstanding one re-opens the watch
  std::string version;
  std::vector<policy::Resource> selected = SelectResources(state, type_url, snapshot, &version);
  if (!force && version == state.sent_version) return;  // nothing new (also: never resend a NACKed set)
  DiscoveryResponse response;
  response.set_type_url(type_url);
  response.set_version_info(version);
  response.set_nonce(std::to_string(next_nonce_++));
  for (const auto& r : selected) *response.add_resources() = *r.body;
  state.sent_version = version;
  state.sent_nonce = response.nonce();
  state.sent_mesh_version = snapshot.mesh_version;
  state.sent_resources = std::move(selected);
  state.awaiting_ack = true;
  out.push_back(std::move(response));
}

}  // namespace weft::server
