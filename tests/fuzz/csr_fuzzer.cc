// libFuzzer target: the CA's CSR path, from the bytes a workload sends to
// the signed certificate: PEM parsing (ParseCsrPem) and CsrSigner::SignCsr
// (DER decoding, signature, key type and extension checks). The first byte
// picks whether the rest is taken as PEM text or as DER, which the target
// wraps in a PEM envelope so that the DER decoder sees arbitrary bytes.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ca/authority_factory.h"
#include "ca/csr_signer.h"
#include "ca/spiffe_id.h"
#include "ca/x509.h"

namespace {

const weft::ca::SigningAuthority& Authority() {
  static const weft::ca::SigningAuthorityConstSharedPtr authority = [] {
    auto made = weft::ca::CreateAuthority("cluster.local", std::chrono::hours(24),
                                          weft::ca::WallTime(std::chrono::seconds(1800000000)));
    if (!made.ok()) std::abort();
    return *made;
  }();
  return *authority;
}

std::string DerToPem(const uint8_t* der, size_t size) {
  std::string b64(4 * ((size + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der, static_cast<int>(size));
  b64.resize(n);
  std::string pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  return pem + "-----END CERTIFICATE REQUEST-----\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string pem = (data[0] & 1) != 0 ? DerToPem(data + 1, size - 1)
                                             : std::string(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)weft::ca::ParseCsrPem(pem);
  static const weft::ca::SpiffeId identity =
      *weft::ca::SpiffeId::Parse("spiffe://cluster.local/ns/shop/sa/orders");
  static const weft::ca::CsrSigner signer;
  auto issued = signer.SignCsr(pem, identity, std::chrono::seconds(0), Authority(),
                               weft::ca::WallTime(std::chrono::seconds(1800000600)));
  if (issued.ok() && issued->chain_pem.empty()) std::abort();  // a success always has a leaf
  return 0;
}
