#include "tests/testing/golden.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iterator>

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

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace weft::testing
