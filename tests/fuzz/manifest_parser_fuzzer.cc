// libFuzzer target: the file-mode manifest parser (YAML streams, JSON,
// Lists) and the object decoder behind it, on arbitrary file contents.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "discovery/manifest_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  weft::discovery::ParsedManifest parsed = weft::discovery::ParseManifest(text, "fuzz.yaml");
  // A document is decoded or reported, never both silently dropped.
  for (const auto& e : parsed.errors) (void)e.ToString();
  return 0;
}
