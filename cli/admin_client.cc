#include "cli/admin_client.h"

#include <httplib.h>

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace weft::cli {

absl::StatusOr<AdminAddress> ParseAdminAddress(absl::string_view text) {
  absl::string_view rest = text;
  absl::ConsumePrefix(&rest, "http://");
  absl::ConsumeSuffix(&rest, "/");
  absl::StatusOr<AdminAddress> address = common::ParseHostPort(std::string(rest));
  if (address.ok() && address->port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": port 0 is not one to connect to"));
  }
  return address;
}

std::string AdminClient::AddressText() const {
  const bool v6 = address_.host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", address_.host, v6 ? "]" : "", ":", address_.port);
}

absl::StatusOr<AdminResponse> AdminClient::Get(const std::string& path) const {
  httplib::Client client(address_.host, address_.port);
  const auto timeout = absl::ToChronoMicroseconds(timeout_);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  if (!token_.empty()) client.set_bearer_token_auth(token_);
  httplib::Result result = client.Get(path.c_str());
  if (!result) {
    std::string why;
    switch (result.error()) {
      case httplib::Error::Connection:
        why = "cannot connect (nothing listening there, an unknown host or no route)";
        break;
      case httplib::Error::ConnectionTimeout:
        why = absl::StrCat("no connection within ", absl::FormatDuration(timeout_));
        break;
      case httplib::Error::Read:
        why = absl::StrCat("no answer within ", absl::FormatDuration(timeout_), " or the connection broke");
        break;
      default:
        why = httplib::to_string(result.error());
    }
    return absl::UnavailableError(
        absl::StrCat("cannot reach weftd's admin API at ", AddressText(), " (GET ", path, "): ", why));
  }
  return AdminResponse{result->status, result->body};
}

}  // namespace weft::cli
