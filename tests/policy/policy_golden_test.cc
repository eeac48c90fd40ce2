// Golden tests of the policy API and the compiler: each directory under
// tests/policy/golden/ holds input.yaml (manifests), proxies.txt (one proxy
// per line: "sidecar NS SA IP" or "proxyless NS") and expected.golden (the
// validation result of every policy, then each proxy's resources as JSON
// with their source map). Every compiled resource must also pass Envoy's
// protoc-gen-validate rules. Set WEFT_UPDATE_GOLDEN=1 to rewrite the
// expected files after an intended change, then review the diff.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "policy/compiler.h"
#include "policy/resource_types.h"
#include "tests/testing/golden.h"
#include "tests/testing/pgv_checker.h"

namespace weft::policy {
namespace {

std::string RenderResources(const ProxyResources& resources) {
  absl::StatusOr<std::string> rendered = testing::RenderResources(resources);
  REQUIRE(rendered.ok());
  return *rendered;
}

std::string ReadFile(const std::string& path) { return testing::ReadTextFile(path); }

std::string RenderStatuses(const PolicySet& set, const discovery::MeshSnapshot& mesh) {
  std::string out = "## policies\n";
  for (const auto& e : mesh.errors) out += "manifest error: " + e.ToString() + "\n";
  for (const auto& [key, s] : set.statuses) {
    out += s.kind + " " + s.namespace_ + "/" + s.name + " (" + s.source + "): " +
           (s.accepted ? "Accepted" : "Invalid") + "\n";
    for (const auto& e : s.errors) out += "  error: " + e.field + ": " + e.reason + "\n";
    for (const auto& e : s.warnings) out += "  warning: " + e.field + ": " + e.reason + "\n";
  }
  return out;
}

ProxyIdentity ParseProxy(const std::string& line) {
  std::istringstream in(line);
  std::string kind;
  ProxyIdentity p;
  in >> kind >> p.namespace_;
  if (kind == "sidecar") {
    p.kind = ProxyIdentity::Kind::kSidecar;
    in >> p.service_account >> p.ip;
  }
  return p;
}

void CheckCase(const std::filesystem::path& dir) {
  const std::string name = dir.filename().string();
  INFO("golden case " << name);
  auto parsed = discovery::ParseManifest(ReadFile((dir / "input.yaml").string()), name + "/input.yaml");
  discovery::MeshSnapshot mesh;
  mesh.version = 1;
  mesh.errors = parsed.errors;
  for (auto& object : parsed.objects) discovery::AddToSnapshot(std::move(object), mesh);
  CompilerOptions options;
  auto set = ValidatePolicies(mesh, options);
  CompilerOptions unshared = options;
  unshared.precompile_shared = false;
  auto set_unshared = ValidatePolicies(mesh, unshared);

  std::string actual = RenderStatuses(*set, mesh);
  std::istringstream proxies(ReadFile((dir / "proxies.txt").string()));
  std::string line;
  while (std::getline(proxies, line)) {
    if (line.empty() || line[0] == '#') continue;
    ProxyIdentity proxy = ParseProxy(line);
    auto resources = Compile(mesh, *set, proxy, options);
    REQUIRE(resources.ok());
    // Precompiled shared pieces change nothing in the output.
    auto direct = Compile(mesh, *set_unshared, proxy, unshared);
    REQUIRE(direct.ok());
    for (const auto& [type, by_name] : resources->resources) {
      for (const auto& [rname, r] : by_name) {
        INFO(type << " " << rname);
        CHECK(direct->resources.at(type).at(rname).hash == r.hash);
        auto pgv = testing::CheckPgv(*r.body);
        CAPTURE(pgv.violations);
        CHECK(pgv.ok());
      }
    }
    actual += "## proxy " + line + "\n" + RenderResources(*resources);
  }
  const std::string golden_path = (dir / "expected.golden").string();
  if (std::getenv("WEFT_UPDATE_GOLDEN") != nullptr) std::ofstream(golden_path) << actual;
  std::string expected = ReadFile(golden_path);
  INFO("golden file " << golden_path << " differs; rerun with WEFT_UPDATE_GOLDEN=1 to rewrite it");
  CHECK(actual == expected);
}

TEST_CASE("golden: every case under tests/policy/golden compiles to its expected output", "[golden]") {
  const std::filesystem::path root = std::string(WEFT_SOURCE_DIR) + "/tests/policy/golden";
  std::vector<std::filesystem::path> cases;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.is_directory()) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  REQUIRE(cases.size() >= 8);
  for (const auto& dir : cases) {
    SECTION(dir.filename().string()) { CheckCase(dir); }
  }
}

}  // namespace
}  // namespace weft::policy
