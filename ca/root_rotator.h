// Owns the CA's roots and intermediates: loads them from a CaStore (or
// creates them on first start), and rotates the root before it expires with
// overlapping trust bundles:
//
//   kStable ──(fraction of the root's life passed, or Rotate())──► kDistributing
//     new root + intermediate made; bundle = {old, new}; the old one still signs
//   kDistributing ──(the bundle-distributed predicate holds)──► kDraining
//     the new intermediate signs; bundle = {new, old}
//   kDraining ──(the longest-lived leaf the old root signed has expired)──► kStable
//     bundle = {new}
//
// Every step is persisted before it is published, so a restart resumes it.
// Time comes from the injected clock and moves only in Tick() (weftd calls it
// periodically), so tests drive the whole state machine by hand. Plug-in
// CAs (an operator's ca-cert.pem without root-key.pem) never rotate.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ca/ca_store.h"
#include "ca/ca_view.h"
#include "common/clock.h"

namespace weft::ca {

struct RotatorOptions {
  std::string trust_domain = "cluster.local";
  std::chrono::seconds root_ttl = std::chrono::hours(24 * 3650);
  // A new root is made once this fraction of the current root's lifetime has passed.
  double rotate_at_fraction = 0.8;
  // The longest leaf the signer issues: how long an old root must stay in the
  // bundle when the leaves it signed before a restart are unknown.
  std::chrono::seconds max_leaf_ttl = std::chrono::hours(24 * 90);
  // Without a predicate (SetBundleDistributedPredicate), signing switches to
  // the new root this long after it entered the bundle: proxies renew at half
  // life, so one default certificate lifetime reaches all of them.
  std::chrono::seconds distribution_time = std::chrono::hours(24);
};

class RootRotator final : public TrustSource {
 public:
  // Loads the CA from `store`, or creates and persists one if the store is
  // empty. `store` and `clock` must outlive the rotator.
  static absl::StatusOr<std::unique_ptr<RootRotator>> Open(CaStore& store, const common::Clock& clock,
                                                           RotatorOptions options);

  CaViewConstSharedPtr Current() const override;

  // The PEM roots proxies should trust now (two during a rotation).
  std::vector<std::string> TrustBundlePem() const;

  // Called after each change (bundle or signer), outside any lock, on the
  // thread that made it. Register before Tick() runs.
  using ChangeCallback = std::function<void(const CaView& view)>;
  void AddChangeCallback(ChangeCallback callback);

  // "Every connected proxy has this bundle" (the xDS side knows; e.g. every
  // proxy ACKed the SDS Secret ROOTCA carrying it). Signing switches to the
  // new root once it holds.
  using BundlePredicate = std::function<bool(const std::vector<std::string>& bundle_pem)>;
  void SetBundleDistributedPredicate(BundlePredicate predicate);

  // Advances the state machine to the clock's time. Errors are storage
  // errors; the previous state stays in force.
  absl::Status Tick();

  // Starts a rotation now (admin API). FAILED_PRECONDITION when one is under
  // way or the CA is an operator's.
  absl::Status Rotate();

  // The signer issued a leaf expiring at `not_after` under `authority`.
  void RecordIssued(const SigningAuthority& authority, WallTime not_after);

  // The store entries (file names in --ca-dir).
  static constexpr const char* kRootCert = "root-cert.pem";  // the trust bundle
  static constexpr const char* kRootKey = "root-key.pem";
  static constexpr const char* kCaCert = "ca-cert.pem";
  static constexpr const char* kCaKey = "ca-key.pem";
  static constexpr const char* kCertChain = "cert-chain.pem";
  static constexpr const char* kRotation = "rotation.json";
  static constexpr const char* kNextPrefix = "next-";

 private:
  RootRotator(CaStore& store, const common::Clock& clock, RotatorOptions options)
      : store_(store), clock_(clock), options_(std::move(options)) {}

  absl::Status LoadOrCreateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  absl::Status StartRotationLocked(WallTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  absl::Status SwitchLocked(WallTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  absl::Status RetireLocked(WallTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Builds and publishes a view from the fields below; bumps the version.
  absl::Status PublishLocked(RotationPhase phase, WallTime since, WallTime retire_after,
                             SigningAuthorityConstSharedPtr signing, SigningAuthorityConstSharedPtr next,
                             std::vector<X509Ptr> roots) ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  void Notify();

  CaStore& store_;
  const common::Clock& clock_;
  const RotatorOptions options_;

  absl::Mutex update_mu_;  // serializes changes (Tick, Rotate); held across storage I/O
  bool plug_in_ ABSL_GUARDED_BY(update_mu_) = false;
  // The old intermediates while the old root drains, to verify their leaves.
  std::vector<X509Ptr> previous_intermediates_ ABSL_GUARDED_BY(update_mu_);
  // The latest not-after among leaves signed by the current signer, and
  // whether every one of them was seen (false when it signed before this
  // process started).
  WallTime max_leaf_not_after_ ABSL_GUARDED_BY(leaf_mu_){};
  bool leaf_tracking_complete_ ABSL_GUARDED_BY(leaf_mu_) = false;
  // Leaves the old signer issued while signing switched away from it.
  WallTime late_old_leaf_not_after_ ABSL_GUARDED_BY(leaf_mu_){};
  mutable absl::Mutex leaf_mu_;

  mutable absl::Mutex mu_;
  CaViewConstSharedPtr view_ ABSL_GUARDED_BY(mu_);
  std::vector<ChangeCallback> callbacks_ ABSL_GUARDED_BY(mu_);
  BundlePredicate predicate_ ABSL_GUARDED_BY(mu_);
};

using RootRotatorPtr = std::unique_ptr<RootRotator>;

}  // namespace weft::ca
