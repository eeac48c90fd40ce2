// weftctl's HTTP client of weftd's admin REST API (DESIGN.md §6): plain
// HTTP GETs to HOST:PORT with an optional bearer token and one timeout for
// connecting and reading. Says which address it could not reach; HTTP error
// statuses are answers, not failures (the caller reads the error body).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/address.h"

namespace weft::cli {

using AdminAddress = common::HostPort;

// "HOST:PORT" or "[V6]:PORT" as weftd's --admin-addr takes it
// (common::ParseHostPort), optionally with an "http://" prefix; port 0 is
// not one to connect to.
absl::StatusOr<AdminAddress> ParseAdminAddress(absl::string_view text);

struct AdminResponse {
  int status = 0;
  std::string body;
};

class AdminClient {
 public:
  // `token`, when not empty, goes out as `Authorization: Bearer <token>`.
  AdminClient(AdminAddress address, std::string token, absl::Duration timeout)
      : address_(std::move(address)), token_(std::move(token)), timeout_(timeout) {}

  // GET `path` ("/api/v1/proxies"). Unavailable, naming the address, when
  // weftd cannot be reached or does not answer within the timeout.
  absl::StatusOr<AdminResponse> Get(const std::string& path) const;

  // "127.0.0.1:15014" (IPv6 hosts in brackets).
  std::string AddressText() const;

 private:
  AdminAddress address_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace weft::cli
