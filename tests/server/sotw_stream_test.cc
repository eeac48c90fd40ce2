#include "server/sotw_stream.h"

#include <catch2/catch.hpp>

#include "tests/server/decoded_stream.h"

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "policy/resource_types.h"

namespace weft::server {
namespace {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
const std::string kCds(policy::kClusterType);
const std::string kEds(policy::kEndpointType);

// Clusters c1..cN whose endpoints point at `port`.
policy::ResourcesByType MakeResources(int clusters, uint32_t port) {
  std::map<std::string, uint32_t> ports;
  for (int i = 1; i <= clusters; ++i) ports["c" + std::to_string(i)] = port;
  return ClusterResources(ports);
}

// A snapshot of MakeResources(); with `previous`, it records what changed.
ProxySnapshot MakeSnapshot(int clusters, uint32_t port, uint64_t mesh_version,
                           const ProxySnapshot* previous = nullptr) {
  return *MakeProxySnapshot(MakeResources(clusters, port), mesh_version, {}, previous);
}

DiscoveryRequest Request(const std::string& type, std::vector<std::string> names,
                         const std::string& version = "", const std::string& nonce = "") {
  DiscoveryRequest r;
  r.set_type_url(type);
  for (auto& n : names) r.add_resource_names(n);
  r.set_version_info(version);
  r.set_response_nonce(nonce);
  return r;
}

// Not awaiting an ACK and nothing rejected.
bool SyncStateForTest(const TypeState& st) { return !st.awaiting_ack && !st.nacked; }

DiscoveryRequest Ack(const DiscoveryResponse& resp, std::vector<std::string> names) {
  return Request(resp.type_url(), std::move(names), resp.version_info(), resp.nonce());
}

DiscoveryRequest Nack(const DiscoveryResponse& resp, const std::string& acked_version,
                      std::vector<std::string> names) {
  auto r = Request(resp.type_url(), std::move(names), acked_version, resp.nonce());
  r.mutable_error_detail()->set_message("bad cluster");
  return r;
}

std::vector<std::string> Names(const DiscoveryResponse& resp) {
  std::vector<std::string> out;
  for (const auto& any : resp.resources()) {
    if (any.type_url() == kCds) {
      envoy::config::cluster::v3::Cluster c;
      any.UnpackTo(&c);
      out.push_back(c.name());
    } else {
      envoy::config::endpoint::v3::ClusterLoadAssignment cla;
      any.UnpackTo(&cla);
      out.push_back(cla.cluster_name());
    }
  }
  return out;
}

TEST_CASE("first request is answered; an ACK of the same version is not", "[sotw]") {
  TestSotw stream;
  auto snap = MakeSnapshot(2, 80, 1);
  auto r1 = stream.OnRequest(Request(kCds, {}), &snap);
  CHECK(r1.event == SotwStream::Event::kSubscribe);
  REQUIRE(r1.responses.size() == 1);
  CHECK(Names(r1.responses[0]) == std::vector<std::string>{"c1", "c2"});  // legacy wildcard
  CHECK(!r1.responses[0].nonce().empty());
  CHECK(!r1.responses[0].version_info().empty());

  auto r2 = stream.OnRequest(Ack(r1.responses[0], {}), &snap);
  CHECK(r2.event == SotwStream::Event::kAck);
  CHECK(r2.responses.empty());
  const TypeState& st = stream.types().at(kCds);
  CHECK(st.acked_version == r1.responses[0].version_info());
  CHECK_FALSE(st.awaiting_ack);
}

TEST_CASE("no request yet means nothing is pushed; nothing is sent without a snapshot", "[sotw]") {
  TestSotw stream;
  auto snap = MakeSnapshot(1, 80, 1);
  CHECK(stream.OnSnapshot(snap).empty());
  auto r = stream.OnRequest(Request(kEds, {"c1"}), nullptr);
  CHECK(r.responses.empty());
  // The snapshot arrives later: the open watch is answered.
  auto pushed = stream.OnSnapshot(snap);
  REQUIRE(pushed.size() == 1);
  CHECK(Names(pushed[0]) == std::vector<std::string>{"c1"});
}

TEST_CASE("updates wait for the ACK of the outstanding response, then go out", "[sotw]") {
  TestSotw stream;
  auto v1 = MakeSnapshot(1, 80, 1);
  auto v2 = MakeSnapshot(1, 81, 2);
  auto v3 = MakeSnapshot(1, 82, 3);
  auto first = stream.OnRequest(Request(kEds, {"c1"}), &v1).responses.at(0);
  // Two updates while the first response is unanswered: none is lost, the
  // newest is sent once the client answers.
  CHECK(stream.OnSnapshot(v2).empty());
  CHECK(stream.OnSnapshot(v3).empty());
  auto after_ack = stream.OnRequest(Ack(first, {"c1"}), &v3);
  REQUIRE(after_ack.responses.size() == 1);
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  after_ack.responses[0].resources(0).UnpackTo(&cla);
  CHECK(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value() == 82);
  CHECK(after_ack.responses[0].nonce() != first.nonce());
}

TEST_CASE("a NACK is recorded and not answered with the same resources", "[sotw]") {
  TestSotw stream;
  auto v1 = MakeSnapshot(1, 80, 1);
  auto v2 = MakeSnapshot(1, 81, 2);
  auto v3 = MakeSnapshot(1, 82, 3);
  auto first = stream.OnRequest(Request(kEds, {"c1"}), &v1).responses.at(0);
  stream.OnRequest(Ack(first, {"c1"}), &v1);
  auto second = stream.OnSnapshot(v2).at(0);
  auto nack = stream.OnRequest(Nack(second, first.version_info(), {"c1"}), &v2);
  CHECK(nack.event == SotwStream::Event::kNack);
  CHECK(nack.responses.empty());
  const TypeState& st = stream.types().at(kEds);
  CHECK(st.nacked);
  CHECK(st.nack_message == "bad cluster");
  CHECK(st.nacked_resources == std::vector<std::string>{"c1"});
  CHECK(st.acked_version == first.version_info());  // the last good version stays
  // The same snapshot again does not resend the rejected content...
  CHECK(stream.OnSnapshot(v2).empty());
  // ...a new one goes out at once, and its ACK clears the NACK.
  auto third = stream.OnSnapshot(v3);
  REQUIRE(third.size() == 1);
  stream.OnRequest(Ack(third[0], {"c1"}), &v3);
  CHECK_FALSE(stream.types().at(kEds).nacked);
}

TEST_CASE("a change of requested names is answered; unsubscribe and resubscribe resends", "[sotw]") {
  TestSotw stream;
  auto snap = MakeSnapshot(3, 80, 1);
  auto r1 = stream.OnRequest(Request(kEds, {"c1"}), &snap).responses.at(0);
  CHECK(Names(r1) == std::vector<std::string>{"c1"});
  // A newly requested name is sent (endpoints go only when new or changed).
  auto r2 = stream.OnRequest(Ack(r1, {"c1", "c2"}), &snap);
  REQUIRE(r2.responses.size() == 1);
  CHECK(Names(r2.responses[0]) == std::vector<std::string>{"c2"});
  CHECK(stream.types().at(kEds).sent.count == 2);
  // Unsubscribing needs no response for endpoints...
  auto r3 = stream.OnRequest(Ack(r2.responses[0], {"c2"}), &snap);
  CHECK(r3.responses.empty());
  CHECK(SyncStateForTest(stream.types().at(kEds)));
  // ...and subscribing again sends it again.
  auto r4 = stream.OnRequest(Request(kEds, {"c1", "c2"}, r2.responses[0].version_info(),
                                     r2.responses[0].nonce()),
                             &snap);
  REQUIRE(r4.responses.size() == 1);
  CHECK(Names(r4.responses[0]) == std::vector<std::string>{"c1"});
}

TEST_CASE("a request with a stale nonce is ignored", "[sotw]") {
  TestSotw stream;
  auto snap = MakeSnapshot(2, 80, 1);
  auto r1 = stream.OnRequest(Request(kEds, {"c1"}), &snap).responses.at(0);
  auto stale = stream.OnRequest(Request(kEds, {"c1", "c2"}, "", "not-the-latest"), &snap);
  CHECK(stale.event == SotwStream::Event::kStale);
  CHECK(stale.responses.empty());
  CHECK(stream.types().at(kEds).awaiting_ack);
  // The client's ACK of the real nonce carries the new names and is answered.
  auto r2 = stream.OnRequest(Ack(r1, {"c1", "c2"}), &snap);
  REQUIRE(r2.responses.size() == 1);
  CHECK(Names(r2.responses[0]) == std::vector<std::string>{"c2"});
}

TEST_CASE("a deleted cluster disappears from the next full-state response and returns when re-added",
          "[sotw]") {
  TestSotw stream;
  auto two = MakeSnapshot(2, 80, 1);
  auto one = MakeSnapshot(1, 80, 2);
  auto r1 = stream.OnRequest(Request(kCds, {"*"}), &two).responses.at(0);
  stream.OnRequest(Ack(r1, {"*"}), &two);
  auto r2 = stream.OnSnapshot(one).at(0);
  CHECK(Names(r2) == std::vector<std::string>{"c1"});
  stream.OnRequest(Ack(r2, {"*"}), &one);
  auto r3 = stream.OnSnapshot(two);
  REQUIRE(r3.size() == 1);
  CHECK(Names(r3[0]) == std::vector<std::string>{"c1", "c2"});
}

TEST_CASE("updates to several types go out clusters first, then endpoints", "[sotw]") {
  TestSotw stream;
  auto v1 = MakeSnapshot(1, 80, 1);
  auto v2 = MakeSnapshot(2, 81, 2);
  auto eds = stream.OnRequest(Request(kEds, {"c1", "c2"}), &v1).responses.at(0);
  auto cds = stream.OnRequest(Request(kCds, {}), &v1).responses.at(0);
  stream.OnRequest(Ack(eds, {"c1", "c2"}), &v1);
  stream.OnRequest(Ack(cds, {}), &v1);
  auto pushed = stream.OnSnapshot(v2);
  REQUIRE(pushed.size() == 2);
  CHECK(pushed[0].type_url() == kCds);
  CHECK(pushed[1].type_url() == kEds);
}

}  // namespace
}  // namespace weft::server

namespace weft::server {
namespace {

TEST_CASE("SotW endpoints: only changed assignments are sent; clusters go whole", "[sotw]") {
  for (bool chained : {false, true}) {
    INFO("snapshots chained: " << chained);
    TestSotw stream;
    auto v1 = MakeSnapshot(2, 80, 1);
    // Same clusters, c2's endpoints changed.
    auto resources = MakeResources(2, 80);
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    cla.set_cluster_name("c2");
    cla.add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address()->mutable_socket_address()->set_port_value(99);
    policy::ProxyResources extra;
    extra.Add(cla, "c2", {});
    resources[kEds]["c2"] = extra.resources[kEds]["c2"];
    auto v2 = *MakeProxySnapshot(resources, 2, {}, chained ? &v1 : nullptr);
    if (chained) {
      CHECK(v2.TypePtr(kCds) == v1.TypePtr(kCds));  // unchanged types are shared
      CHECK(v2.Type(kEds).change->changed == std::vector<std::string>{"c2"});
    }

    auto eds = stream.OnRequest(Request(kEds, {"c1", "c2"}), &v1).responses.at(0);
    CHECK(Names(eds) == std::vector<std::string>{"c1", "c2"});
    auto cds = stream.OnRequest(Request(kCds, {}), &v1).responses.at(0);
    stream.OnRequest(Ack(eds, {"c1", "c2"}), &v1);
    stream.OnRequest(Ack(cds, {}), &v1);
    auto pushed = stream.OnSnapshot(v2);
    REQUIRE(pushed.size() == 1);  // clusters unchanged: no CDS push
    CHECK(pushed[0].type_url() == kEds);
    CHECK(Names(pushed[0]) == std::vector<std::string>{"c2"});
    // The admin view still knows the client holds both.
    CHECK(stream.types().at(kEds).sent.count == 2);
  }
}

TEST_CASE("SotW: clients subscribing to the same names share one interned set", "[sotw]") {
  TestSotw a, b;
  auto snap = MakeSnapshot(3, 80, 1);
  a.OnRequest(Request(kEds, {"c1", "c2"}), &snap);
  b.OnRequest(Request(kEds, {"c2", "c1"}), &snap);
  CHECK(a.types().at(kEds).names == b.types().at(kEds).names);
}

}  // namespace
}  // namespace weft::server
