// Keeps deploy/crds/ and the C++ validation consistent: every weft.io
// manifest among the examples and the golden inputs goes through both, and
// both must give the same verdict (the C++ validation may say more, e.g.
// cross-field rules a structural schema cannot express).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "discovery/manifest_parser.h"
#include "discovery/yaml_to_json.h"
#include "policy/policy_set.h"
#include "tests/testing/openapi_checker.h"

namespace weft::policy {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, nlohmann::json> LoadCrdSchemas() {
  std::map<std::string, nlohmann::json> schemas;
  for (const auto& entry : fs::directory_iterator(std::string(WEFT_SOURCE_DIR) + "/deploy/crds")) {
    auto stream = discovery::ParseYamlStream(ReadFile(entry.path()));
    REQUIRE_FALSE(stream.error);
    for (const auto& crd : stream.documents) {
      REQUIRE(crd["spec"]["group"] == "weft.io");
      auto schema = testing::CrdSchema(crd, "v1alpha1");
      REQUIRE_FALSE(schema.is_null());
      schemas[crd["spec"]["names"]["kind"].get<std::string>()] = schema;
    }
  }
  return schemas;
}

std::vector<fs::path> ExampleManifests() {
  std::vector<fs::path> files;
  for (const char* dir : {"/examples", "/tests/policy/golden", "/tests/policy/testdata"}) {
    for (const auto& entry : fs::recursive_directory_iterator(std::string(WEFT_SOURCE_DIR) + dir)) {
      if (entry.path().extension() == ".yaml") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST_CASE("CRDs: every weft.io kind has a CRD with a structural schema", "[crd]") {
  auto schemas = LoadCrdSchemas();
  for (const char* kind : {"Workload", "TrafficPolicy", "AuthorizationPolicy", "RateLimitPolicy", "MTLSPolicy"}) {
    INFO(kind);
    CHECK(schemas.count(kind) == 1);
  }
}

TEST_CASE("CRDs: the schemas and the C++ validation agree on every example manifest", "[crd]") {
  auto schemas = LoadCrdSchemas();
  int valid = 0, invalid = 0;
  for (const auto& file : ExampleManifests()) {
    auto stream = discovery::ParseYamlStream(ReadFile(file));
    REQUIRE_FALSE(stream.error);
    auto parsed = discovery::ParseManifest(ReadFile(file), file.string());
    for (size_t i = 0; i < stream.documents.size(); ++i) {
      const auto& doc = stream.documents[i];
      if (!doc.is_object() || doc.value("apiVersion", "") != "weft.io/v1alpha1") continue;
      const std::string kind = doc.value("kind", "");
      INFO(file.string() << " document " << i << " (" << kind << ")");
      REQUIRE(schemas.count(kind) == 1);
      auto schema_errors = testing::CheckOpenApi(schemas[kind], doc);
      bool cpp_ok = true;
      std::vector<std::string> cpp_errors;
      if (kind == "Workload") {
        for (const auto& e : parsed.errors) {
          if (e.source.document == static_cast<int>(i)) cpp_errors.push_back(e.field + ": " + e.reason);
        }
        cpp_ok = cpp_errors.empty();
      } else {
        discovery::PolicyDocument pd;
        pd.api_version = "weft.io/v1alpha1";
        pd.kind = kind;
        pd.meta.name = doc["metadata"].value("name", "");
        pd.meta.namespace_ = doc["metadata"].value("namespace", "default");
        pd.body = doc;
        PolicySet scratch;
        auto status = ValidatePolicyDocument(pd, scratch);
        cpp_ok = status.accepted;
        for (const auto& e : status.errors) cpp_errors.push_back(e.field + ": " + e.reason);
      }
      CAPTURE(schema_errors, cpp_errors);
      CHECK(cpp_ok == schema_errors.empty());
      (cpp_ok ? valid : invalid)++;
    }
  }
  // The examples cover both verdicts.
  CHECK(valid >= 15);
  CHECK(invalid >= 4);
}

TEST_CASE("CRDs: the schema checker reports types, enums, patterns, ranges and unknown fields", "[crd]") {
  auto schemas = LoadCrdSchemas();
  auto doc = nlohmann::json::parse(R"({"apiVersion": "weft.io/v1alpha1", "kind": "TrafficPolicy",
    "metadata": {"name": "x"},
    "spec": {"timeout": "2 seconds", "retries": {"attempts": 11}, "loadBalancer": {"type": "Fastest"},
             "tiemout": "1s", "fault": {"abort": {"percent": 5}}}})");
  auto errors = testing::CheckOpenApi(schemas["TrafficPolicy"], doc);
  CHECK(errors == std::vector<std::string>{
                      "spec.fault.abort.status: required",
                      "spec.loadBalancer.type: must be one of [\"RoundRobin\",\"LeastRequest\",\"Random\",\"RingHash\"]",
                      "spec.retries.attempts: above the maximum 10",
                      "spec.tiemout: unknown field",
                      "spec.timeout: must match ^([0-9]{1,5}(h|m|s|ms)){1,4}$"});
}

}  // namespace
}  // namespace weft::policy
