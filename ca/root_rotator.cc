#include "ca/root_rotator.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ca/authority_factory.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace weft::ca {
namespace {

using nlohmann::json;

constexpr const char* kPreviousChain = "previous-cert-chain.pem";

int64_t ToUnix(WallTime t) { return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count(); }
WallTime FromUnix(int64_t s) { return WallTime(std::chrono::seconds(s)); }

std::string Next(const char* name) { return absl::StrCat(RootRotator::kNextPrefix, name); }

// The non-root CA certificates of an authority.
void AppendIntermediates(const SigningAuthority* a, std::vector<X509Ptr>& out) {
  if (a == nullptr) return;
  out.push_back(Share(a->certificate.get()));
  for (const auto& c : a->chain) {
    if (!IsSelfSigned(c.get())) out.push_back(Share(c.get()));
  }
}

void AddAuthority(CaEntries& entries, const SigningAuthority& a, const std::string& prefix) {
  AuthorityPem pem = ToPem(a);
  entries[prefix + RootRotator::kCaCert] = pem.ca_cert;
  entries[prefix + RootRotator::kCaKey] = pem.ca_key;
  entries[prefix + RootRotator::kCertChain] = pem.cert_chain;
  if (!pem.root_key.empty()) entries[prefix + RootRotator::kRootKey] = pem.root_key;
}

}  // namespace

const char* RotationPhaseName(RotationPhase phase) {
  switch (phase) {
    case RotationPhase::kStable:
      return "stable";
    case RotationPhase::kDistributing:
      return "distributing";
    case RotationPhase::kDraining:
      return "draining";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<RootRotator>> RootRotator::Open(CaStore& store, const common::Clock& clock,
                                                               RotatorOptions options) {
  if (!(options.rotate_at_fraction > 0 && options.rotate_at_fraction < 1)) {
    return absl::InvalidArgumentError("rotate_at_fraction must be in (0, 1)");
  }
  std::unique_ptr<RootRotator> rotator(new RootRotator(store, clock, std::move(options)));
  absl::MutexLock lock(&rotator->update_mu_);
  // ABORTED: another weftd created the CA in a shared store (a Kubernetes
  // Secret) between our read and our write; load the winner's.
  absl::Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    s = rotator->LoadOrCreateLocked();
    if (s.code() != absl::StatusCode::kAborted) break;
    WEFT_LOG(INFO) << "CA: " << s.message() << "; loading the CA it wrote";
  }
  RETURN_IF_ERROR(s);
  return rotator;
}

absl::Status RootRotator::LoadOrCreateLocked() {
  const WallTime now = clock_.WallNow();
  ASSIGN_OR_RETURN(auto store_lock, store_.LockExclusive());
  ASSIGN_OR_RETURN(CaEntries e,
                   store_.Load({kRootCert, kRootKey, kCaCert, kCaKey, kCertChain, kRotation, kPreviousChain,
                                Next(kRootKey), Next(kCaCert), Next(kCaKey), Next(kCertChain)}));
  const std::vector<std::string> core = {kCaCert, kCaKey, kCertChain, kRootCert, kRootKey};
  bool any = std::any_of(core.begin(), core.end(), [&](const std::string& n) { return e.count(n) > 0; });
  if (!any) {
    ASSIGN_OR_RETURN(SigningAuthorityConstSharedPtr created,
                     CreateAuthority(options_.trust_domain, options_.root_ttl, now));
    CaEntries out;
    AddAuthority(out, *created, "");
    out[kRootCert] = CertificateToPem(created->root.get());
    RETURN_IF_ERROR(store_.Save(out, {kRotation, kPreviousChain, Next(kRootKey), Next(kCaCert), Next(kCaKey),
                                      Next(kCertChain)}));
    WEFT_LOG(INFO) << "CA: created a new root (" << SubjectString(created->root.get()) << ", expires "
                   << ToUnix(NotAfter(created->root.get())) << ") in " << store_.Describe();
    {
      absl::MutexLock leaf_lock(&leaf_mu_);
      leaf_tracking_complete_ = true;
    }
    std::vector<X509Ptr> roots;
    roots.push_back(Share(created->root.get()));
    return PublishLocked(RotationPhase::kStable, now, {}, created, nullptr, std::move(roots));
  }

  plug_in_ = e.count(kRootKey) == 0;
  std::vector<std::string> missing;
  for (const char* name : {kCaCert, kCaKey, kCertChain, kRootCert}) {
    if (e.count(name) == 0) missing.push_back(name);
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "incomplete CA in ", store_.Describe(), ": missing ", absl::StrJoin(missing, ", "),
        " (a CA needs ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem, plus root-key.pem when Weft "
        "made it; an empty directory gets a new CA)"));
  }
  auto roots = ParseCertificatesPem(e[kRootCert]);
  if (!roots.ok()) return absl::InvalidArgumentError(absl::StrCat(kRootCert, ": ", roots.status().message()));
  auto signing = LoadAuthority(e[kCaCert], e[kCaKey], e[kCertChain], plug_in_ ? "" : e[kRootKey], *roots, now);
  if (!signing.ok()) {
    return absl::Status(signing.status().code(),
                        absl::StrCat("the CA in ", store_.Describe(), " is unusable: ", signing.status().message()));
  }

  RotationPhase phase = RotationPhase::kStable;
  WallTime since = now;
  WallTime retire_after{};
  SigningAuthorityConstSharedPtr next;
  if (!plug_in_ && e.count(kRotation) > 0) {
    json state = json::parse(e[kRotation], nullptr, /*allow_exceptions=*/false);
    if (!state.is_object() || !state.contains("phase") || !state["phase"].is_string() ||
        !state.value("since", json()).is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(kRotation, " in ", store_.Describe(), " is not valid"));
    }
    since = FromUnix(state["since"].get<int64_t>());
    std::string name = state["phase"].get<std::string>();
    if (name == "distributing") {
      auto loaded = LoadAuthority(e[Next(kCaCert)], e[Next(kCaKey)], e[Next(kCertChain)], e[Next(kRootKey)], *roots,
                                  now, kNextPrefix);
      if (!loaded.ok()) {
        return absl::Status(loaded.status().code(), absl::StrCat("the rotation in ", store_.Describe(),
                                                                 " is unusable: ", loaded.status().message()));
      }
      next = *loaded;
      phase = RotationPhase::kDistributing;
    } else if (name == "draining" && state.value("retireOldRootAfter", json()).is_number_integer()) {
      retire_after = FromUnix(state["retireOldRootAfter"].get<int64_t>());
      phase = RotationPhase::kDraining;
      if (e.count(kPreviousChain) > 0) {
        auto previous = ParseCertificatesPem(e[kPreviousChain]);
        if (previous.ok()) {
          for (auto& c : *previous) {
            if (!IsSelfSigned(c.get())) previous_intermediates_.push_back(std::move(c));
          }
        }
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(kRotation, " in ", store_.Describe(), ": unknown phase"));
    }
  }
  WEFT_LOG(INFO) << "CA: loaded " << (plug_in_ ? "an operator-provided (plug-in) CA" : "the CA") << " from "
                 << store_.Describe() << " (" << roots->size() << " trusted root(s), rotation "
                 << RotationPhaseName(phase) << ")";
  return PublishLocked(phase, since, retire_after, *signing, next, std::move(*roots));
}

absl::Status RootRotator::PublishLocked(RotationPhase phase, WallTime since, WallTime retire_after,
                                        SigningAuthorityConstSharedPtr signing, SigningAuthorityConstSharedPtr next,
                                        std::vector<X509Ptr> roots) {
  auto view = std::make_shared<CaView>();
  ASSIGN_OR_RETURN(view->store, MakeTrustStore(roots));
  for (const auto& r : roots) view->roots_pem.push_back(CertificateToPem(r.get()));
  view->roots = std::move(roots);
  AppendIntermediates(signing.get(), view->intermediates);
  AppendIntermediates(next.get(), view->intermediates);
  if (phase == RotationPhase::kDraining) {
    for (const auto& c : previous_intermediates_) view->intermediates.push_back(Share(c.get()));
  }
  view->signing = std::move(signing);
  view->next = std::move(next);
  view->phase = phase;
  view->phase_since = since;
  view->retire_old_root_after = retire_after;
  view->plug_in = plug_in_;
  absl::MutexLock lock(&mu_);
  view->version = view_ ? view_->version + 1 : 1;
  view_ = std::move(view);
  return absl::OkStatus();
}

CaViewConstSharedPtr RootRotator::Current() const {
  absl::MutexLock lock(&mu_);
  return view_;
}

std::vector<std::string> RootRotator::TrustBundlePem() const { return Current()->roots_pem; }

void RootRotator::AddChangeCallback(ChangeCallback callback) {
  absl::MutexLock lock(&mu_);
  callbacks_.push_back(std::move(callback));
}

void RootRotator::SetBundleDistributedPredicate(BundlePredicate predicate) {
  absl::MutexLock lock(&mu_);
  predicate_ = std::move(predicate);
}

void RootRotator::Notify() {
  std::vector<ChangeCallback> callbacks;
  CaViewConstSharedPtr view;
  {
    absl::MutexLock lock(&mu_);
    callbacks = callbacks_;
    view = view_;
  }
  for (const auto& cb : callbacks) cb(*view);
}

void RootRotator::RecordIssued(const SigningAuthority& authority, WallTime not_after) {
  bool current = Current()->signing.get() == &authority;
  absl::MutexLock lock(&leaf_mu_);
  WallTime& slot = current ? max_leaf_not_after_ : late_old_leaf_not_after_;
  slot = std::max(slot, not_after);
}

absl::Status RootRotator::Tick() {
  bool changed = false;
  absl::Status status;
  {
    absl::MutexLock lock(&update_mu_);
    const WallTime now = clock_.WallNow();
    CaViewConstSharedPtr view = Current();
    switch (view->phase) {
      case RotationPhase::kStable: {
        if (plug_in_) break;
        WallTime nb = NotBefore(view->signing->root.get());
        WallTime na = NotAfter(view->signing->root.get());
        auto rotate_at = nb + std::chrono::duration_cast<std::chrono::seconds>((na - nb) * options_.rotate_at_fraction);
        if (now >= rotate_at) {
          WEFT_LOG(INFO) << "CA: the root expires at " << ToUnix(na) << "; starting a root rotation";
          status = StartRotationLocked(now);
          changed = status.ok();
        }
        break;
      }
      case RotationPhase::kDistributing: {
        BundlePredicate predicate;
        {
          absl::MutexLock l(&mu_);
          predicate = predicate_;
        }
        bool distributed = predicate ? predicate(view->roots_pem)
                                     : now >= view->phase_since + options_.distribution_time;
        if (distributed) {
          status = SwitchLocked(now);
          changed = status.ok();
        }
        break;
      }
      case RotationPhase::kDraining: {
        WallTime late;
        {
          absl::MutexLock l(&leaf_mu_);
          late = late_old_leaf_not_after_;
        }
        if (now >= std::max(view->retire_old_root_after, late)) {
          status = RetireLocked(now);
          changed = status.ok();
        }
        break;
      }
    }
  }
  if (!status.ok()) {
    WEFT_LOG(ERROR) << "CA: root rotation step failed (will retry): " << status;
  }
  if (changed) Notify();
  return status;
}

absl::Status RootRotator::Rotate() {
  absl::Status status;
  {
    absl::MutexLock lock(&update_mu_);
    status = StartRotationLocked(clock_.WallNow());
  }
  if (status.ok()) Notify();
  return status;
}

absl::Status RootRotator::StartRotationLocked(WallTime now) {
  if (plug_in_) {
    return absl::FailedPreconditionError(
        "the CA is an operator's (plug-in mode, no root-key.pem): rotate it by replacing its files");
  }
  CaViewConstSharedPtr view = Current();
  if (view->phase != RotationPhase::kStable) {
    return absl::FailedPreconditionError(
        absl::StrCat("a root rotation is already under way (", RotationPhaseName(view->phase), ")"));
  }
  ASSIGN_OR_RETURN(SigningAuthorityConstSharedPtr next, CreateAuthority(options_.trust_domain, options_.root_ttl, now));
  std::vector<X509Ptr> roots = Share(view->roots);
  roots.push_back(Share(next->root.get()));
  CaEntries out;
  AddAuthority(out, *next, kNextPrefix);
  out[kRootCert] = CertificatesToPem(roots);
  out[kRotation] = json{{"phase", "distributing"}, {"since", ToUnix(now)}}.dump() + "\n";
  RETURN_IF_ERROR(store_.Save(out, {}));
  WEFT_LOG(INFO) << "CA: root rotation: new root " << SubjectString(next->root.get())
                 << " added to the trust bundle; the old root signs until every proxy has it";
  return PublishLocked(RotationPhase::kDistributing, now, {}, view->signing, next, std::move(roots));
}

absl::Status RootRotator::SwitchLocked(WallTime now) {
  CaViewConstSharedPtr view = Current();
  const SigningAuthority& old = *view->signing;
  WallTime retire_after;
  {
    absl::MutexLock lock(&leaf_mu_);
    // Leaves the old signer issued before this process started are unknown:
    // assume the longest possible one was issued just now.
    retire_after = leaf_tracking_complete_ ? std::max(max_leaf_not_after_, now) : now + options_.max_leaf_ttl;
    retire_after = std::min(retire_after, NotAfter(old.certificate.get()));
  }
  std::vector<X509Ptr> roots;
  roots.push_back(Share(view->next->root.get()));
  for (const auto& r : view->roots) {
    if (X509_cmp(r.get(), view->next->root.get()) != 0) roots.push_back(Share(r.get()));
  }
  CaEntries out;
  AddAuthority(out, *view->next, "");
  out[kPreviousChain] = ToPem(old).cert_chain;
  out[kRootCert] = CertificatesToPem(roots);
  out[kRotation] = json{{"phase", "draining"}, {"since", ToUnix(now)}, {"retireOldRootAfter", ToUnix(retire_after)}}
                       .dump() + "\n";
  RETURN_IF_ERROR(store_.Save(out, {Next(kRootKey), Next(kCaCert), Next(kCaKey), Next(kCertChain)}));
  previous_intermediates_.clear();
  AppendIntermediates(&old, previous_intermediates_);
  {
    absl::MutexLock lock(&leaf_mu_);
    max_leaf_not_after_ = WallTime{};
    late_old_leaf_not_after_ = WallTime{};
    leaf_tracking_complete_ = true;
  }
  WEFT_LOG(INFO) << "CA: root rotation: the new root signs now; the old root stays trusted until "
                 << ToUnix(retire_after);
  return PublishLocked(RotationPhase::kDraining, now, retire_after, view->next, nullptr, std::move(roots));
}

absl::Status RootRotator::RetireLocked(WallTime now) {
  CaViewConstSharedPtr view = Current();
  std::vector<X509Ptr> roots;
  roots.push_back(Share(view->signing->root.get()));
  CaEntries out;
  out[kRootCert] = CertificatesToPem(roots);
  RETURN_IF_ERROR(store_.Save(out, {kRotation, kPreviousChain}));
  previous_intermediates_.clear();
  WEFT_LOG(INFO) << "CA: root rotation done: the old root left the trust bundle";
  return PublishLocked(RotationPhase::kStable, now, {}, view->signing, nullptr, std::move(roots));
}

}  // namespace weft::ca
