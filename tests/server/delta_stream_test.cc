#include "server/delta_stream.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/server/decoded_stream.h"

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "policy/resource_types.h"
#include "server/proxy_tracker.h"

namespace weft::server {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
const std::string kCds(policy::kClusterType);
const std::string kEds(policy::kEndpointType);

// Clusters and endpoints named in `ports` (name -> endpoint port).
ProxySnapshot Snap(const std::map<std::string, uint32_t>& ports, uint64_t mesh_version,
                   const ProxySnapshot* previous = nullptr) {
  return *MakeProxySnapshot(ClusterResources(ports), mesh_version, {}, previous);
}

DeltaDiscoveryRequest Req(const std::string& type, std::vector<std::string> subscribe,
                          std::vector<std::string> unsubscribe = {}, const std::string& nonce = "") {
  DeltaDiscoveryRequest r;
  r.set_type_url(type);
  for (auto& n : subscribe) r.add_resource_names_subscribe(n);
  for (auto& n : unsubscribe) r.add_resource_names_unsubscribe(n);
  r.set_response_nonce(nonce);
  return r;
}

DeltaDiscoveryRequest Ack(const DeltaDiscoveryResponse& resp) {
  return Req(resp.type_url(), {}, {}, resp.nonce());
}

std::vector<std::string> Sent(const DeltaDiscoveryResponse& r) {
  std::vector<std::string> out;
  for (const auto& res : r.resources()) out.push_back(res.name());
  return out;
}
std::vector<std::string> Removed(const DeltaDiscoveryResponse& r) {
  return {r.removed_resources().begin(), r.removed_resources().end()};
}
using Names = std::vector<std::string>;

TEST_CASE("delta: wildcard gets everything with per-resource versions", "[delta]") {
  TestDelta stream;
  auto snap = Snap({{"a", 80}, {"b", 81}}, 1);
  auto r = stream.OnRequest(Req(kCds, {}), &snap);
  REQUIRE(r.responses.size() == 1);
  CHECK(Sent(r.responses[0]) == Names{"a", "b"});
  CHECK(!r.responses[0].resources(0).version().empty());
  CHECK(r.responses[0].resources(0).version() != r.responses[0].resources(1).version());
  CHECK(!r.responses[0].nonce().empty());
  auto ack = stream.OnRequest(Ack(r.responses[0]), &snap);
  CHECK(ack.event == DeltaStream::Event::kAck);
  CHECK(ack.responses.empty());
  CHECK(SyncState(stream.types().at(kCds)) == "SYNCED");
}

TEST_CASE("delta: only changed resources are sent; deletions go in removed_resources", "[delta]") {
  const bool chained = GENERATE(false, true);
  INFO("snapshots chained: " << chained);
  TestDelta stream;
  auto v1 = Snap({{"a", 80}, {"b", 81}}, 1);
  auto v2 = Snap({{"a", 80}, {"b", 82}}, 2, chained ? &v1 : nullptr);
  auto v3 = Snap({{"a", 80}}, 3, chained ? &v2 : nullptr);
  auto r1 = stream.OnRequest(Req(kEds, {"a", "b"}), &v1).responses.at(0);
  stream.OnRequest(Ack(r1), &v1);
  auto r2 = stream.OnSnapshot(v2);
  REQUIRE(r2.size() == 1);
  CHECK(Sent(r2[0]) == Names{"b"});
  CHECK(Removed(r2[0]).empty());
  auto r3 = stream.OnSnapshot(v3);
  REQUIRE(r3.size() == 1);
  CHECK(Sent(r3[0]).empty());
  CHECK(Removed(r3[0]) == Names{"b"});
  // Nothing changed: nothing is sent.
  CHECK(stream.OnSnapshot(v3).empty());
}

TEST_CASE("delta: a deleted then re-added resource is sent again", "[delta]") {
  const bool chained = GENERATE(false, true);
  INFO("snapshots chained: " << chained);
  TestDelta stream;
  auto with = Snap({{"a", 80}}, 1);
  auto without = Snap({}, 2, chained ? &with : nullptr);
  stream.OnRequest(Req(kCds, {"*"}), &with);
  auto removed = stream.OnSnapshot(without);
  REQUIRE(removed.size() == 1);
  CHECK(Removed(removed[0]) == Names{"a"});
  auto again = Snap({{"a", 80}}, 3, chained ? &without : nullptr);
  auto readded = stream.OnSnapshot(again);  // identical content to before
  REQUIRE(readded.size() == 1);
  CHECK(Sent(readded[0]) == Names{"a"});
}

TEST_CASE("delta: unsubscribe then resubscribe sends the resource again", "[delta]") {
  TestDelta stream;
  auto snap = Snap({{"a", 80}, {"b", 81}}, 1);
  auto r1 = stream.OnRequest(Req(kEds, {"a", "b"}), &snap).responses.at(0);
  auto r2 = stream.OnRequest(Req(kEds, {}, {"a"}, r1.nonce()), &snap);
  CHECK(r2.responses.empty());
  auto r3 = stream.OnRequest(Req(kEds, {"a"}), &snap);
  REQUIRE(r3.responses.size() == 1);
  CHECK(Sent(r3.responses[0]) == Names{"a"});
  // Unsubscribed resources are no longer pushed.
  auto r4 = stream.OnRequest(Req(kEds, {}, {"b"}), &snap);
  CHECK(r4.responses.empty());
  auto changed = Snap({{"a", 80}, {"b", 99}}, 2);
  CHECK(stream.OnSnapshot(changed).empty());
}

TEST_CASE("delta: subscribing to a name that does not exist is answered in removed_resources",
          "[delta]") {
  TestDelta stream;
  auto snap = Snap({{"a", 80}}, 1);
  auto r = stream.OnRequest(Req(kEds, {"a", "ghost"}), &snap);
  REQUIRE(r.responses.size() == 1);
  CHECK(Sent(r.responses[0]) == Names{"a"});
  CHECK(Removed(r.responses[0]) == Names{"ghost"});
  // When it appears, it is sent.
  auto later = Snap({{"a", 80}, {"ghost", 81}}, 2);
  auto pushed = stream.OnSnapshot(later);
  REQUIRE(pushed.size() == 1);
  CHECK(Sent(pushed[0]) == Names{"ghost"});
}

TEST_CASE("delta: a NACK is recorded, not answered with the same versions, and later updates flow",
          "[delta]") {
  TestDelta stream;
  auto v1 = Snap({{"a", 80}}, 1);
  auto v2 = Snap({{"a", 81}}, 2);
  auto v3 = Snap({{"a", 82}}, 3);
  auto r1 = stream.OnRequest(Req(kEds, {"a"}), &v1).responses.at(0);
  stream.OnRequest(Ack(r1), &v1);
  auto r2 = stream.OnSnapshot(v2).at(0);
  auto nack = Ack(r2);
  nack.mutable_error_detail()->set_message("port 81 is forbidden");
  auto result = stream.OnRequest(nack, &v2);
  CHECK(result.event == DeltaStream::Event::kNack);
  CHECK(result.responses.empty());
  const TypeState& st = stream.types().at(kEds);
  CHECK(st.nacked);
  CHECK(st.nack_message == "port 81 is forbidden");
  CHECK(st.nacked_resources == Names{"a"});
  CHECK(SyncState(st) == "NACKED");
  CHECK(stream.OnSnapshot(v2).empty());
  auto r3 = stream.OnSnapshot(v3);
  REQUIRE(r3.size() == 1);
  stream.OnRequest(Ack(r3[0]), &v3);
  CHECK(SyncState(stream.types().at(kEds)) == "SYNCED");
}

TEST_CASE("delta: updates are not held back while a response is unanswered", "[delta]") {
  TestDelta stream;
  auto v1 = Snap({{"a", 80}}, 1);
  auto v2 = Snap({{"a", 81}}, 2);
  auto v3 = Snap({{"a", 82}}, 3);
  stream.OnRequest(Req(kEds, {"a"}), &v1);
  auto r2 = stream.OnSnapshot(v2);
  auto r3 = stream.OnSnapshot(v3);
  REQUIRE(r2.size() == 1);
  REQUIRE(r3.size() == 1);
  CHECK(r2[0].nonce() != r3[0].nonce());
  // ACKing the newest answers all of them.
  stream.OnRequest(Ack(r3[0]), &v3);
  CHECK(SyncState(stream.types().at(kEds)) == "SYNCED");
  // A late ACK of an older nonce is stale.
  CHECK(stream.OnRequest(Ack(r2[0]), &v3).event == DeltaStream::Event::kStale);
}

TEST_CASE("delta: a reconnecting client's initial versions are honoured", "[delta]") {
  auto snap = Snap({{"a", 80}, {"b", 81}}, 1);
  TestDelta first;
  auto r = first.OnRequest(Req(kCds, {"*"}), &snap).responses.at(0);
  DeltaDiscoveryRequest again = Req(kCds, {"*"});
  for (const auto& res : r.resources()) (*again.mutable_initial_resource_versions())[res.name()] = res.version();
  (*again.mutable_initial_resource_versions())["gone"] = "v0";
  TestDelta second;
  auto r2 = second.OnRequest(again, &snap);
  REQUIRE(r2.responses.size() == 1);
  CHECK(Sent(r2.responses[0]).empty());
  CHECK(Removed(r2.responses[0]) == Names{"gone"});
}

TEST_CASE("delta: several types change: clusters go before endpoints", "[delta]") {
  TestDelta stream;
  auto v1 = Snap({{"a", 80}}, 1);
  auto v2 = Snap({{"a", 80}, {"b", 81}}, 2);
  stream.OnRequest(Req(kEds, {"a", "b"}), &v1);
  stream.OnRequest(Req(kCds, {}), &v1);
  auto pushed = stream.OnSnapshot(v2);
  REQUIRE(pushed.size() == 2);
  CHECK(pushed[0].type_url() == kCds);
  CHECK(pushed[1].type_url() == kEds);
}

}  // namespace
}  // namespace weft::server

namespace weft::server {
namespace {

TEST_CASE("delta: a reconnecting client that already holds everything is SYNCED without a response",
          "[delta]") {
  auto snap = Snap({{"a", 80}, {"b", 81}}, 7);
  TestDelta first;
  auto r = first.OnRequest(Req(kCds, {"*"}), &snap).responses.at(0);
  DeltaDiscoveryRequest again = Req(kCds, {"*"});
  for (const auto& res : r.resources()) (*again.mutable_initial_resource_versions())[res.name()] = res.version();
  TestDelta second;
  CHECK(second.OnRequest(again, &snap).responses.empty());
  const TypeState& view = second.types().at(kCds);
  CHECK(SyncState(view) == "SYNCED");
  CHECK(view.acked_mesh_version == 7);
  // Before any snapshot exists, a new subscriber is not in sync.
  TestDelta third;
  third.OnRequest(Req(kCds, {"*"}), nullptr);
  CHECK(SyncState(third.types().at(kCds)) == "STALE");
}

}  // namespace
}  // namespace weft::server

namespace weft::server {
namespace {

TEST_CASE("delta: a stream that missed versions gets exactly what differs from what it holds", "[delta]") {
  auto v1 = Snap({{"a", 80}, {"b", 81}, {"c", 82}, {"d", 83}}, 1);
  auto v2 = Snap({{"a", 90}, {"b", 81}, {"c", 82}, {"d", 83}}, 2, &v1);
  auto v3 = Snap({{"a", 80}, {"b", 91}, {"c", 82}, {"e", 84}}, 3, &v2);
  TestDelta stream;
  auto first = stream.OnRequest(Req(kEds, {"a", "b", "d", "e"}), &v1).responses.at(0);
  CHECK(Sent(first) == Names{"a", "b", "d"});
  CHECK(Removed(first) == Names{"e"});
  stream.OnRequest(Ack(first), &v1);
  // v2 never reached this stream: v3 is compared with v1 ("a" is back as it
  // was, "d" is gone, "e" appeared, "c" is not subscribed).
  auto pushed = stream.OnSnapshot(v3);
  REQUIRE(pushed.size() == 1);
  CHECK(Sent(pushed[0]) == Names{"b", "e"});
  CHECK(Removed(pushed[0]) == Names{"d"});
  stream.OnRequest(Ack(pushed[0]), &v3);
  CHECK(SyncState(stream.types().at(kEds)) == "SYNCED");

  // Another stream with the same history shares the (remembered) diff and
  // gets the same answer.
  TestDelta other;
  other.OnRequest(Ack(other.OnRequest(Req(kEds, {"a", "b", "d", "e"}), &v1).responses.at(0)), &v1);
  auto again = other.OnSnapshot(v3);
  REQUIRE(again.size() == 1);
  CHECK(Sent(again[0]) == Names{"b", "e"});
  CHECK(Removed(again[0]) == Names{"d"});
}

TEST_CASE("delta: a first request's names are each answered once, sent or removed", "[delta]") {
  // Names sort between and around the existing ones, and one the client
  // says it had (initial versions) is gone: each name appears exactly once.
  auto snap = Snap({{"b", 80}, {"m", 81}, {"y", 82}}, 1);
  DeltaDiscoveryRequest req = Req(kEds, {"y", "a-ghost", "m", "n-ghost", "b", "z-ghost"});
  (*req.mutable_initial_resource_versions())["n-ghost"] = "v0";
  TestDelta stream;
  auto r = stream.OnRequest(req, &snap).responses.at(0);
  CHECK(Sent(r) == Names{"b", "m", "y"});
  Names removed = Removed(r);
  std::sort(removed.begin(), removed.end());
  CHECK(removed == Names{"a-ghost", "n-ghost", "z-ghost"});
}

TEST_CASE("delta: subscription lists are sets: duplicates, any order, \"*\" among other names", "[delta]") {
  auto snap = Snap({{"!early", 79}, {"a", 80}, {"b", 81}}, 1);
  TestDelta stream;
  auto r = stream.OnRequest(Req(kEds, {"b", "!early", "b", "a"}), &snap).responses.at(0);
  CHECK(Sent(r) == Names{"!early", "a", "b"});
  stream.OnRequest(Ack(r), &snap);
  // Subscribed and unsubscribed in one request: unsubscribed.
  auto both = stream.OnRequest(Req(kEds, {"zz"}, {"zz", "a"}), &snap);
  CHECK(both.responses.empty());
  CHECK(*stream.types().at(kEds).names == NameSet{"!early", "b"});
  // "*" is recognised wherever it sorts among the names.
  auto wild = stream.OnRequest(Req(kCds, {"!early", "*"}), &snap).responses.at(0);
  CHECK(Sent(wild) == Names{"!early", "a", "b"});
  CHECK(stream.types().at(kCds).wildcard);
}

}  // namespace
}  // namespace weft::server
