// Builds PEM PKCS#10 requests: what a proxy sends to CreateCertificate (its
// key never leaves it). Used by weft-proxy, the tests and the benchmark.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ca/x509.h"

namespace weft::ca {

struct CsrFields {
  std::vector<std::string> uri_sans;  // normally exactly the caller's SPIFFE ID
  std::vector<std::string> dns_sans;
  bool request_ca = false;            // adds basicConstraints CA:TRUE (the CA refuses it)
  std::string common_name;            // optional subject CN
};

// A CSR for `key`'s public half, signed with `key` (SHA-256).
absl::StatusOr<std::string> MakeCsrPem(EVP_PKEY* key, const CsrFields& fields);

}  // namespace weft::ca
