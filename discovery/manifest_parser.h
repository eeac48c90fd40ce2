// Parses the text of one manifest file in file mode (--config-dir): a YAML
// stream of one or more documents, or JSON; a `kind: List` (or any
// `...List` with `items`) contributes each of its items. Every document is
// decoded with DecodeObject(); errors name the file, the 0-based document
// index, the field and the reason. Called by FileRegistry; never throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "discovery/mesh_object.h"
#include "discovery/mesh_snapshot.h"

namespace weft::discovery {

struct ParsedManifest {
  // Decoded objects in document order. Kinds the mesh does not use are left
  // out silently, as are empty documents.
  std::vector<MeshObject> objects;
  std::vector<ConfigError> errors;
  // The text is not valid YAML/JSON: nothing in it was decoded, `errors`
  // holds one entry with the line and column.
  bool syntax_error = false;
  // MeshObjectKey() of each document that was recognised (kind, namespace
  // and name readable) but invalid, so that the caller can keep the version
  // of it that was last good.
  std::vector<std::string> invalid_keys;
};

// `file` is what errors and objects' SourceRef name, e.g. "conf/mesh.yaml".
ParsedManifest ParseManifest(std::string_view text, const std::string& file);

}  // namespace weft::discovery
