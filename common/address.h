// HOST:PORT flag and address values ("127.0.0.1:15014", "[::1]:15012", "localhost:0").
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace weft::common {

struct HostPort {
  std::string host;
  int port = 0;
};

absl::StatusOr<HostPort> ParseHostPort(const std::string& value);
// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopback(const std::string& host);

}  // namespace weft::common
