// Converts a YAML stream (one or more documents) into JSON values, for the
// manifest parser. Plain scalars resolve by the YAML 1.2 core schema (true /
// false, null / ~ / empty, integers, floats); quoted scalars stay strings, so
// `port: "80"` is the string "80", as in Kubernetes. Supports anchors,
// aliases and `<<` merge keys. Never throws: yaml-cpp's exceptions end here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace weft::discovery {

struct YamlSyntaxError {
  int document = 0;  // 0-based index of the document where parsing stopped
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
  std::string message;
  // "line 3, column 7: illegal map value"
  std::string ToString() const;
};

struct YamlStream {
  // One entry per document in the stream, in order; an empty document is
  // null. When `error` is set, the documents before the broken one.
  std::vector<nlohmann::json> documents;
  std::optional<YamlSyntaxError> error;
};

YamlStream ParseYamlStream(std::string_view text);

// Resolves the text of a plain (unquoted, untagged) YAML scalar by the YAML
// 1.2 core schema: null, boolean, integer, float or string.
nlohmann::json ResolvePlainScalar(const std::string& text);

}  // namespace weft::discovery
