// libFuzzer target: a line of a Kubernetes watch stream or a list item, as
// the watcher and the registry handle it: JSON parse, the event's object,
// its key, then DecodeObject() as each watched kind (the watcher stamps
// apiVersion and kind of the resource it watches before decoding).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "discovery/kube_resource.h"
#include "discovery/kube_watcher.h"
#include "discovery/object_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  json event = json::parse(line, nullptr, false);
  if (!event.is_object()) return 0;
  // A watch event wraps the object; a list item is the object itself.
  const json& object = event.contains("object") && event["object"].is_object() ? event["object"] : event;
  (void)weft::discovery::KubeObjectKey(object);
  for (const weft::discovery::KubeResource& resource : weft::discovery::WatchedKubeResources()) {
    json copy = object;
    copy["apiVersion"] = resource.ApiVersion();
    copy["kind"] = resource.kind;
    weft::discovery::DecodeResult decoded =
        weft::discovery::DecodeObject(copy, weft::discovery::SourceRef{"", -1});
    for (const auto& e : decoded.errors) (void)e.ToString();
  }
  return 0;
}
