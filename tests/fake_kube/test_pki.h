// Throwaway PKI for tests of TLS to the fake API server: a CA, a serving
// certificate for 127.0.0.1/localhost and a client certificate, all PEM,
// ECDSA P-256, valid for a day. Never use outside tests.
#pragma once

#include <string>

namespace weft::fake_kube {

struct TestPki {
  std::string ca_cert_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
  std::string client_cert_pem;  // CN=weft-test (O=system:masters)
  std::string client_key_pem;
};

// Aborts on an OpenSSL failure: the test environment is broken then.
TestPki MakeTestPki();

}  // namespace weft::fake_kube
