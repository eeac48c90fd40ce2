// A small OpenAPI v3 structural-schema checker, enough for Weft's CRDs
// (deploy/crds/): type, properties, required, items, enum, pattern,
// minimum/maximum, minLength/maxLength, minItems/maxItems,
// additionalProperties, x-kubernetes-int-or-string. Unknown fields are
// errors (like kubectl's strict field validation). Used by the test that
// keeps the CRDs and the C++ validation consistent.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace weft::testing {

// Violations of `schema` by `value`, each "path: reason".
std::vector<std::string> CheckOpenApi(const nlohmann::json& schema, const nlohmann::json& value,
                                      const std::string& path = "");

// The openAPIV3Schema of `version` in a CustomResourceDefinition; null if absent.
nlohmann::json CrdSchema(const nlohmann::json& crd, const std::string& version);

}  // namespace weft::testing
