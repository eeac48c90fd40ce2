// Decodes one Kubernetes-style object (already parsed into JSON) into the
// typed registry model: Service, EndpointSlice, Workload, Pod, Namespace, or a
// policy document (HTTPRoute and the weft.io policy kinds, validated later by
// policy/). Shared by the file-mode manifest parser and the Kubernetes client,
// so it reads nothing but the JSON it is given.
//
// Validation collects every problem with its field path
// ("spec.ports[0].port: must be an integer between 1 and 65535") so that a
// user fixes all of them in one pass. Kinds the mesh does not use
// (Deployment, ConfigMap, ...) are not errors: they come back as kIgnored.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "discovery/mesh_object.h"
#include "discovery/mesh_snapshot.h"

namespace weft::discovery {

struct DecodeResult {
  enum class Outcome {
    kDecoded,  // `object` is set
    kIgnored,  // a kind the mesh does not use; neither object nor errors
    kInvalid,  // `errors` says why (never empty)
  };
  Outcome outcome = Outcome::kInvalid;
  std::optional<MeshObject> object;
  std::vector<ConfigError> errors;
  // The object's identity as far as it could be read ("" where it could
  // not), so that a caller can keep the last good version of an object that
  // has become invalid. `namespace_` is defaulted like the object's.
  std::string api_version;
  std::string kind;
  std::string namespace_;
  std::string name;

  bool decoded() const { return outcome == Outcome::kDecoded; }
  bool ignored() const { return outcome == Outcome::kIgnored; }
};

// Decodes `object`. `source` is recorded in the decoded object's metadata and
// in every error. Objects from the Kubernetes API server's list responses
// lack apiVersion and kind; the caller sets them before decoding.
DecodeResult DecodeObject(const nlohmann::json& object, const SourceRef& source);

}  // namespace weft::discovery
