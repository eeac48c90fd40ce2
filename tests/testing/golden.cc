#include "tests/testing/golden.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iterator>

#include "discovery/manifest_parser.h"
#include "discovery/mesh_object.h"
#include "policy/compiler.h"
#include "policy/resource_types.h"

namespace weft::testing {

absl::StatusOr<std::string> RenderResources(const policy::ProxyResources& resources) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  for (const auto& [type_url, by_name] : resources.resources) {
    for (const auto& [name, r] : by_name) {
      std::string json;
      auto status = google::protobuf::util::MessageToJsonString(*r.body, &json, options);
      if (!status.ok()) return absl::InternalError("cannot print " + name + ": " + std::string(status.message()));
      out += "### " + std::string(policy::ShortTypeName(type_url)) + " " + name + "\n";
      out += "# sources:";
      for (const auto& s : r.sources) out += " " + s;
      out += "\n" + json;
    }
  }
  return out;
}

absl::StatusOr<policy::ProxyResources> CompileGoldenForSidecar(const std::string& golden, const std::string& ns,
                                                               const std::string& service_account,
                                                               const std::string& ip) {
  const std::string text = ReadTextFile(std::string(WEFT_SOURCE_DIR) + "/tests/policy/golden/" + golden + "/input.yaml");
  if (text.empty()) return absl::NotFoundError("no golden input " + golden);
  auto parsed = discovery::ParseManifest(text, golden);
  discovery::MeshSnapshot mesh;
  for (auto& o : parsed.objects) discovery::AddToSnapshot(std::move(o), mesh);
  auto policies = policy::ValidatePolicies(mesh);
  policy::ProxyIdentity id;
  id.kind = policy::ProxyIdentity::Kind::kSidecar;
  id.namespace_ = ns;
  id.service_account = service_account;
  id.ip = ip;
  return policy::Compile(mesh, *policies, id);
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace weft::testing
