// Envoy acceptance without Envoy: checks a message against the
// protoc-gen-validate constraints annotated in its .proto files
// ((validate.rules) field options, (validate.required) oneofs), read from
// the descriptors at run time — the first check Envoy applies to any config
// it receives. Recurses into sub-messages and into Any payloads whose type
// is linked in (unknown Any types are listed, not failed). Reusable by the
// policy, xDS and proxy tests.
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace weft::testing {

struct PgvResult {
  std::vector<std::string> violations;    // "field.path: reason"
  std::vector<std::string> unknown_anys;  // Any type URLs that could not be checked
  bool ok() const { return violations.empty(); }
};

PgvResult CheckPgv(const google::protobuf::Message& message);

}  // namespace weft::testing
