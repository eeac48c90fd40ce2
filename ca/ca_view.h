// An immutable picture of the CA at one moment: who signs, which roots the
// mesh trusts, and where a root rotation stands. RootRotator publishes a new
// one on every change (pointer swap); the service, the authenticators and the
// admin API read whichever is current.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ca/csr_signer.h"
#include "ca/x509.h"

namespace weft::ca {

enum class RotationPhase {
  kStable,        // one root
  kDistributing,  // a new root is in the bundle; the old one still signs
  kDraining,      // the new root signs; the old stays trusted until its leaves expire
};
const char* RotationPhaseName(RotationPhase phase);

struct CaView {
  uint64_t version = 0;  // grows with every change
  SigningAuthorityConstSharedPtr signing;
  SigningAuthorityConstSharedPtr next;  // kDistributing only
  std::vector<X509Ptr> roots;            // the trust bundle, signing root first
  std::vector<std::string> roots_pem;
  std::vector<X509Ptr> intermediates;    // every non-root CA certificate we know, to verify peers
  X509StorePtr store;                    // trusts `roots`
  RotationPhase phase = RotationPhase::kStable;
  WallTime phase_since{};
  WallTime retire_old_root_after{};      // kDraining only
  bool plug_in = false;                  // an operator's CA: no automatic rotation
};
using CaViewConstSharedPtr = std::shared_ptr<const CaView>;

// What authenticators verify peers against.
class TrustSource {
 public:
  virtual ~TrustSource() = default;
  virtual CaViewConstSharedPtr Current() const = 0;
};

}  // namespace weft::ca
