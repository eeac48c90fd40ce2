#include "tests/testing/openapi_checker.h"

#include "re2/re2.h"

namespace weft::testing {
namespace {

using nlohmann::json;

std::string Join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

bool TypeMatches(const std::string& type, const json& v) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  return false;
}

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::vector<std::string> CheckOpenApi(const json& schema, const json& value, const std::string& path) {
  std::vector<std::string> out;
  auto error = [&](const std::string& p, const std::string& reason) { out.push_back((p.empty() ? "<root>" : p) + ": " + reason); };
  if (value.is_null()) {
    if (!schema.value("nullable", false)) error(path, "must not be null");
    return out;
  }
  if (schema.value("x-kubernetes-int-or-string", false)) {
    if (!value.is_number_integer() && !value.is_string()) error(path, "must be an integer or a string");
    return out;
  }
  if (schema.contains("type")) {
    const std::string type = schema["type"];
    if (!TypeMatches(type, value)) {
      error(path, "must be of type " + type);
      return out;
    }
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == value;
    if (!found) error(path, "must be one of " + schema["enum"].dump());
  }
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (schema.contains("pattern") && !RE2::PartialMatch(s, RE2(schema["pattern"].get<std::string>()))) {
      error(path, "must match " + schema["pattern"].get<std::string>());
    }
    if (schema.contains("minLength") && Utf8Length(s) < schema["minLength"].get<size_t>()) error(path, "too short");
    if (schema.contains("maxLength") && Utf8Length(s) > schema["maxLength"].get<size_t>()) error(path, "too long");
  }
  if (value.is_number()) {
    double v = value.get<double>();
    if (schema.contains("minimum") && v < schema["minimum"].get<double>()) error(path, "below the minimum " + schema["minimum"].dump());
    if (schema.contains("maximum") && v > schema["maximum"].get<double>()) error(path, "above the maximum " + schema["maximum"].dump());
  }
  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>()) error(path, "too few items");
    if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<size_t>()) error(path, "too many items");
    if (schema.contains("items")) {
      for (size_t i = 0; i < value.size(); ++i) {
        auto sub = CheckOpenApi(schema["items"], value[i], path + "[" + std::to_string(i) + "]");
        out.insert(out.end(), sub.begin(), sub.end());
      }
    }
  }
  if (value.is_object()) {
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) {
        if (!value.contains(r.get<std::string>())) error(Join(path, r.get<std::string>()), "required");
      }
    }
    const bool preserve = schema.value("x-kubernetes-preserve-unknown-fields", false);
    for (const auto& [key, v] : value.items()) {
      if (schema.contains("properties") && schema["properties"].contains(key)) {
        auto sub = CheckOpenApi(schema["properties"][key], v, Join(path, key));
        out.insert(out.end(), sub.begin(), sub.end());
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
        auto sub = CheckOpenApi(schema["additionalProperties"], v, Join(path, key));
        out.insert(out.end(), sub.begin(), sub.end());
      } else if (!preserve && (schema.contains("properties") || schema.contains("additionalProperties"))) {
        error(Join(path, key), "unknown field");
      }
    }
  }
  return out;
}

json CrdSchema(const json& crd, const std::string& version) {
  if (!crd.contains("spec") || !crd["spec"].contains("versions")) return nullptr;
  for (const auto& v : crd["spec"]["versions"]) {
    if (v.value("name", "") == version && v.contains("schema")) return v["schema"].value("openAPIV3Schema", json());
  }
  return nullptr;
}

}  // namespace weft::testing
