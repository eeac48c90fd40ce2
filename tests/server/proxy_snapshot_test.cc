// The shared per-type sets behind every stream: diffs between any two
// versions, digests of a subscription, and the SotW request reader that
// fingerprints resource names instead of parsing them.
#include "server/proxy_snapshot.h"

#include <grpcpp/support/byte_buffer.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "common/hash.h"
#include "policy/resource_types.h"

#include "server/raw_request.h"
#include "server/sotw_stream.h"
#include "tests/server/decoded_stream.h"

namespace weft::server {
namespace {

using envoy::service::discovery::v3::DiscoveryRequest;
const std::string kEds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

ProxySnapshotConstSharedPtr Snap(const std::map<std::string, uint32_t>& ports,
                                 const ProxySnapshotConstSharedPtr& previous = nullptr) {
  return MakeProxySnapshot(ClusterResources(ports), 1, {}, previous.get());
}

TEST_CASE("snapshot: a diff between versions that are not neighbours", "[snapshot]") {
  auto v1 = Snap({{"a", 80}, {"b", 81}, {"c", 82}});
  auto v2 = Snap({{"a", 90}, {"b", 81}, {"c", 82}}, v1);
  auto v3 = Snap({{"a", 80}, {"c", 85}, {"d", 86}}, v2);
  const TypeResources& t1 = v1->Type(kEds);
  const TypeResources& t3 = v3->Type(kEds);
  // The neighbour's diff is the one recorded at creation.
  CHECK(v2->Type(kEds).DiffFrom(t1) == v2->Type(kEds).change);
  CHECK(v2->Type(kEds).change->changed == std::vector<std::string>{"a"});
  auto diff = t3.DiffFrom(t1);
  CHECK(diff->changed == std::vector<std::string>{"c", "d"});  // "a" went back to what v1 had
  CHECK(diff->removed == std::vector<std::string>{"b"});
  CHECK(t3.DiffFrom(t1) == diff);  // remembered, not recomputed
  // Backwards too.
  auto back = t1.DiffFrom(t3);
  CHECK(back->changed == std::vector<std::string>{"b", "c"});
  CHECK(back->removed == std::vector<std::string>{"d"});
}

TEST_CASE("names: one shared copy per distinct set, however it was interned", "[snapshot]") {
  NameSetConstSharedPtr first = InternNames({"m", "a", "z", "a"});
  std::vector<std::string_view> sorted{"a", "m", "z"};
  CHECK(InternSortedNames(sorted) == first);
  // A set first interned from sorted names is the one InternNames finds.
  std::vector<std::string_view> fresh{"b", "c"};
  NameSetConstSharedPtr second = InternSortedNames(fresh);
  CHECK(*second == NameSet{"b", "c"});
  CHECK(InternNames({"c", "b"}) == second);
  CHECK(InternSortedNames(fresh) == second);
}

TEST_CASE("snapshot: a subscription's digest equals the sum over the resources it selects", "[snapshot]") {
  auto v = Snap({{"a", 80}, {"b", 81}, {"c", 82}, {"d", 83}});
  TypeResourcesConstSharedPtr t = v->TypePtr(kEds);
  NameSetConstSharedPtr names = InternNames({"b", "d", "zz"});
  auto [digest, count] = t->SelectedDigest(names);
  CHECK(count == 2);
  CHECK(digest == ResourceDigest("b", t->Find("b")->hash) + ResourceDigest("d", t->Find("d")->hash));
  CHECK(t->SelectedDigest(names) == std::make_pair(digest, count));
  // Select follows a change from the previous selection to the same result
  // as a selection from scratch.
  auto w = Snap({{"a", 80}, {"b", 91}, {"c", 82}}, v);
  Selection before = Select(t, false, names, nullptr);
  Selection followed = Select(w->TypePtr(kEds), false, names, &before);
  Selection fresh = Select(w->TypePtr(kEds), false, names, nullptr);
  CHECK(followed.count == 1);
  CHECK(followed.digest == fresh.digest);
  CHECK(followed.count == fresh.count);
}

grpc::ByteBuffer Wire(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

DiscoveryRequest Request(std::vector<std::string> names, const std::string& nonce) {
  DiscoveryRequest r;
  r.set_type_url(kEds);
  r.set_response_nonce(nonce);
  r.set_version_info("v1");
  for (auto& n : names) r.add_resource_names(n);
  return r;
}

TEST_CASE("raw SotW request: names are fingerprinted, everything else is parsed", "[raw_request]") {
  auto read = [](const DiscoveryRequest& r) {
    RawSotwRequest raw;
    REQUIRE(ReadSotwRequest(Wire(r.SerializeAsString()), raw));
    CHECK(raw.request.resource_names().empty());
    CHECK(raw.request.type_url() == kEds);
    return raw;
  };
  RawSotwRequest a = read(Request({"x", "y"}, "1"));
  CHECK(a.request.response_nonce() == "1");
  CHECK(a.request.version_info() == "v1");
  CHECK(read(Request({"x", "y"}, "2")).names_fingerprint == a.names_fingerprint);
  CHECK(read(Request({"y", "x"}, "1")).names_fingerprint != a.names_fingerprint);
  CHECK(read(Request({"xy"}, "1")).names_fingerprint != a.names_fingerprint);
  CHECK(read(Request({"x"}, "1")).names_fingerprint != a.names_fingerprint);
  CHECK(read(Request({}, "1")).names_fingerprint != a.names_fingerprint);
  // Names split by another field still count, in order.
  DiscoveryRequest split = Request({"x"}, "1");
  std::string bytes = split.SerializeAsString();
  DiscoveryRequest tail;
  tail.add_resource_names("y");
  bytes += tail.SerializeAsString();  // a second run of names after the other fields
  RawSotwRequest raw;
  REQUIRE(ReadSotwRequest(Wire(bytes), raw));
  REQUIRE(ParseNames(raw));
  CHECK(std::vector<std::string>(raw.request.resource_names().begin(), raw.request.resource_names().end()) ==
        std::vector<std::string>{"x", "y"});
  // A reused reader forgets the previous request.
  RawSotwRequest reused;
  REQUIRE(ReadSotwRequest(Wire(Request({"x", "y"}, "9").SerializeAsString()), reused));
  REQUIRE(ReadSotwRequest(Wire(Request({}, "").SerializeAsString()), reused));
  CHECK(reused.request.response_nonce().empty());
  CHECK(!ReadSotwRequest(Wire(std::string("\x1a\x05" "ab", 4)), reused));  // truncated field
  // A truncated name inside a run of names.
  CHECK(!ReadSotwRequest(Wire(std::string("\x1a\x01" "a" "\x1a\x05" "ab", 7)), reused));
  // A long run, with the other fields after it, reads whole.
  std::vector<std::string> many;
  for (int i = 0; i < 1000; ++i) many.push_back("outbound|80||svc-" + std::to_string(i) + ".default.svc.cluster.local");
  REQUIRE(ReadSotwRequest(Wire(Request(many, "7").SerializeAsString()), reused));
  CHECK(reused.request.response_nonce() == "7");
  CHECK(reused.request.type_url() == kEds);
  REQUIRE(ParseNames(reused));
  CHECK(reused.request.resource_names_size() == 1000);
  const uint64_t fingerprint = reused.names_fingerprint;
  many[500].back() = 'X';
  REQUIRE(ReadSotwRequest(Wire(Request(many, "7").SerializeAsString()), reused));
  CHECK(reused.names_fingerprint != fingerprint);  // one name in the middle changed
}

}  // namespace
}  // namespace weft::server

namespace weft::server {
namespace {

TEST_CASE("DigestVersion is the stable hash of the type URL and the digest, for every type", "[proxy_snapshot]") {
  // Versions must not change across weftd releases that keep the algorithm:
  // proxies reconnecting after a restart compare them.
  for (std::string type : {std::string(policy::kClusterType), std::string(policy::kSecretType),
                           std::string("type.googleapis.com/example.Unknown")}) {
    for (uint64_t digest : {uint64_t{0}, uint64_t{42}, ~uint64_t{0}}) {
      const common::StableHasher reference = common::StableHasher().Add(type).Add(std::to_string(digest));
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(reference.Value()));
      CHECK(DigestVersion(type, digest) == hex);
    }
  }
}

}  // namespace
}  // namespace weft::server
