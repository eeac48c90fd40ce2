#include "discovery/manifest_parser.h"

#include <exception>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "discovery/object_decoder.h"
#include "discovery/yaml_to_json.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

bool LooksLikeJson(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[';
  }
  return false;
}

// "[json.exception.parse_error.101] parse error at line 1, column 2: ..." ->
// "parse error at line 1, column 2: ...".
std::string JsonErrorMessage(const std::exception& e) {
  std::string_view what = e.what();
  if (what.substr(0, 16) == "[json.exception.") {
    size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  return std::string(what);
}

class ManifestParser {
 public:
  explicit ManifestParser(const std::string& file) : file_(file) {}

  ParsedManifest Parse(std::string_view text) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
    if (LooksLikeJson(text)) {
      ParseJson(text);
    } else {
      ParseYaml(text);
    }
    return std::move(out_);
  }

 private:
  void SyntaxError(int document, std::string reason) {
    ConfigError e;
    e.source = SourceRef{file_, document};
    e.reason = std::move(reason);
    out_ = ParsedManifest();
    out_.syntax_error = true;
    out_.errors.push_back(std::move(e));
  }

  void ParseJson(std::string_view text) {
    json value;
    try {
      value = json::parse(text.begin(), text.end());
    } catch (const std::exception& e) {
      SyntaxError(0, absl::StrCat("invalid JSON: ", JsonErrorMessage(e)));
      return;
    }
    if (value.is_array()) {
      // A bare array of objects: each element counts as one document.
      for (size_t i = 0; i < value.size(); ++i) AddDocument(value[i], static_cast<int>(i));
    } else {
      AddDocument(value, 0);
    }
  }

  void ParseYaml(std::string_view text) {
    YamlStream stream = ParseYamlStream(text);
    if (stream.error) {
      SyntaxError(stream.error->document, absl::StrCat("invalid YAML: ", stream.error->ToString()));
      return;
    }
    for (size_t i = 0; i < stream.documents.size(); ++i) {
      AddDocument(stream.documents[i], static_cast<int>(i));
    }
  }

  void AddDocument(const json& doc, int index) {
    if (doc.is_null()) return;  // empty document
    const SourceRef source{file_, index};
    if (doc.is_object()) {
      auto kind = doc.find("kind");
      if (kind != doc.end() && kind->is_string() &&
          absl::EndsWith(kind->get_ref<const std::string&>(), "List")) {
        auto items = doc.find("items");
        if (items != doc.end() && items->is_array()) {
          for (size_t i = 0; i < items->size(); ++i) {
            AddObject((*items)[i], source, absl::StrCat("items[", i, "]"));
          }
          return;
        }
        if (*kind == "List") {
          ConfigError e;
          e.source = source;
          e.field = "items";
          e.reason = items == doc.end() ? "required" : "must be a list";
          out_.errors.push_back(std::move(e));
          return;
        }
      }
    }
    AddObject(doc, source, "");
  }

  void AddObject(const json& object, const SourceRef& source, const std::string& prefix) {
    DecodeResult result = DecodeObject(object, source);
    switch (result.outcome) {
      case DecodeResult::Outcome::kDecoded:
        out_.objects.push_back(std::move(*result.object));
        return;
      case DecodeResult::Outcome::kIgnored:
        return;
      case DecodeResult::Outcome::kInvalid:
        break;
    }
    if (!result.kind.empty() && !result.name.empty()) {
      out_.invalid_keys.push_back(MeshObjectKey(result.kind, result.namespace_, result.name));
    }
    for (ConfigError& e : result.errors) {
      if (!prefix.empty()) {
        if (e.field.empty()) {
          e.field = prefix;
        } else if (e.field[0] == '[') {
          e.field = prefix + e.field;
        } else {
          e.field = absl::StrCat(prefix, ".", e.field);
        }
      }
      out_.errors.push_back(std::move(e));
    }
  }

  const std::string& file_;
  ParsedManifest out_;
};

}  // namespace

ParsedManifest ParseManifest(std::string_view text, const std::string& file) {
  return ManifestParser(file).Parse(text);
}

}  // namespace weft::discovery
