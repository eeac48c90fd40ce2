// Golden test: manifests in, xDS JSON out. Set WEFT_UPDATE_GOLDEN=1 to
// rewrite the expected files after an intended change, then review the diff.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "policy/compiler.h"
#include "policy/resource_types.h"
#include "tests/testing/golden.h"

namespace weft::policy {
namespace {

std::string RenderResources(const ProxyResources& resources) {
  absl::StatusOr<std::string> rendered = testing::RenderResources(resources);
  REQUIRE(rendered.ok());
  return *rendered;
}

std::string ReadFile(const std::string& path) { return testing::ReadTextFile(path); }

void CheckGolden(const std::string& name) {
  const std::string dir = std::string(WEFT_SOURCE_DIR) + "/tests/policy/testdata/";
  auto parsed = discovery::ParseManifest(ReadFile(dir + name + ".yaml"), name + ".yaml");
  REQUIRE(parsed.errors.empty());
  discovery::MeshSnapshot mesh;
  for (auto& object : parsed.objects) discovery::AddToSnapshot(std::move(object), mesh);
  auto resources = Compile(mesh, PolicySet{}, ProxyIdentity{});
  REQUIRE(resources.ok());
  std::string actual = RenderResources(*resources);
  const std::string golden_path = dir + name + ".golden";
  if (std::getenv("WEFT_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path) << actual;
  }
  std::string expected = ReadFile(golden_path);
  INFO("golden file " << golden_path << " differs; rerun with WEFT_UPDATE_GOLDEN=1 to rewrite it");
  CHECK(actual == expected);
}

TEST_CASE("golden: the shop mesh compiles to the expected proxyless xDS", "[compiler][golden]") {
  CheckGolden("shop_mesh");
}

}  // namespace
}  // namespace weft::policy
