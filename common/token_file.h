// A bearer token kept in a file (weftd's --admin-token-file, weftctl's
// --token-file): the file's content without its trailing newlines, carriage
// returns and spaces. Both sides read it here, so that a file weftd accepts
// gives weftctl the same token.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace weft::common {

// The token; an error naming `path` when it cannot be read or holds nothing.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace weft::common
