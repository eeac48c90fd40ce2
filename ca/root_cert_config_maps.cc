#include "ca/root_cert_config_maps.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace weft::ca {
namespace {

using nlohmann::json;

std::string Collection(const std::string& ns) {
  return absl::StrCat("/api/v1/namespaces/", ns, "/configmaps");
}

absl::Status ApiFailure(const std::string& what, const KubeHttpResponse& r) {
  json status = json::parse(r.body, nullptr, false);
  std::string message = status.is_object() ? status.value("message", "") : "";
  return absl::UnavailableError(
      absl::StrCat(what, ": HTTP ", r.status, message.empty() ? "" : ": ", message));
}

void CountWrite(common::MetricsRegistry& metrics, const char* op) {
  metrics
      .GetCounter("weft_ca_root_cert_configmap_writes_total", "ConfigMaps weft-ca-root-cert written",
                  {{"op", op}})
      .Inc();
}

}  // namespace

RootCertConfigMaps::RootCertConfigMaps(KubeHttp http, common::MetricsRegistry& metrics,
                                       std::chrono::seconds resync)
    : http_(std::move(http)), metrics_(metrics), resync_(resync) {}

RootCertConfigMaps::~RootCertConfigMaps() { Stop(); }

void RootCertConfigMaps::SetNamespaces(std::set<std::string> namespaces) {
  absl::MutexLock lock(&mu_);
  if (namespaces == namespaces_) return;
  for (const auto& ns : namespaces_) {
    if (namespaces.count(ns) == 0) left_.insert(ns);
  }
  for (const auto& ns : namespaces) left_.erase(ns);
  namespaces_ = std::move(namespaces);
  dirty_ = true;
}

void RootCertConfigMaps::SetBundle(std::string pem) {
  absl::MutexLock lock(&mu_);
  if (pem == bundle_) return;
  bundle_ = std::move(pem);
  dirty_ = true;
}

absl::Status RootCertConfigMaps::SyncNamespace(const std::string& ns, const std::string& bundle) {
  const std::string path = absl::StrCat(Collection(ns), "/", kName);
  const std::string what = absl::StrCat("ConfigMap ", ns, "/", kName);
  json desired = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       {{"name", kName}, {"namespace", ns}, {"labels", {{"app.kubernetes.io/managed-by", "weftd"}}}}},
      {"data", {{kKey, bundle}}}};
  ASSIGN_OR_RETURN(KubeHttpResponse got, http_("GET", path, ""));
  if (got.status == 404) {
    ASSIGN_OR_RETURN(KubeHttpResponse created, http_("POST", Collection(ns), desired.dump()));
    if (created.status != 201 && created.status != 200) return ApiFailure("creating " + what, created);
    CountWrite(metrics_, "create");
    WEFT_LOG(INFO) << "CA: created " << what;
    return absl::OkStatus();
  }
  if (got.status != 200) return ApiFailure("reading " + what, got);
  json current = json::parse(got.body, nullptr, false);
  if (!current.is_object() || !current["metadata"].is_object() ||
      !current["metadata"]["resourceVersion"].is_string()) {
    return absl::InternalError(absl::StrCat("reading ", what, ": not a ConfigMap object"));
  }
  if (current.contains("data") && current["data"].is_object() && current["data"].size() == 1 &&
      current["data"].value(kKey, "") == bundle) {
    return absl::OkStatus();
  }
  desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"];
  ASSIGN_OR_RETURN(KubeHttpResponse updated, http_("PUT", path, desired.dump()));
  // 409: someone else wrote in between; the next pass reads it again.
  if (updated.status != 200) return ApiFailure("updating " + what, updated);
  CountWrite(metrics_, "update");
  WEFT_LOG(INFO) << "CA: updated " << what << " to the current trust bundle";
  return absl::OkStatus();
}

absl::Status RootCertConfigMaps::RemoveFromNamespace(const std::string& ns) {
  const std::string path = absl::StrCat(Collection(ns), "/", kName);
  const std::string what = absl::StrCat("ConfigMap ", ns, "/", kName);
  ASSIGN_OR_RETURN(KubeHttpResponse got, http_("GET", path, ""));
  if (got.status == 404) return absl::OkStatus();  // none, or the namespace is gone
  if (got.status != 200) return ApiFailure("reading " + what, got);
  json current = json::parse(got.body, nullptr, false);
  const json* metadata = current.is_object() && current.contains("metadata") ? &current["metadata"] : nullptr;
  if (metadata == nullptr || !metadata->is_object()) {
    return absl::InternalError(absl::StrCat("reading ", what, ": not a ConfigMap object"));
  }
  const json labels = metadata->value("labels", json::object());
  if (!labels.is_object() || labels.value("app.kubernetes.io/managed-by", "") != "weftd") {
    return absl::OkStatus();  // someone else's: left alone
  }
  // Only the object read above: one rewritten or replaced meanwhile (409)
  // is looked at again on the next pass.
  json options = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"preconditions", json::object()}};
  if (metadata->contains("uid")) options["preconditions"]["uid"] = (*metadata)["uid"];
  if (metadata->contains("resourceVersion")) {
    options["preconditions"]["resourceVersion"] = (*metadata)["resourceVersion"];
  }
  ASSIGN_OR_RETURN(KubeHttpResponse deleted, http_("DELETE", path, options.dump()));
  if (deleted.status == 404) return absl::OkStatus();
  if (deleted.status != 200 && deleted.status != 202) return ApiFailure("deleting " + what, deleted);
  CountWrite(metrics_, "delete");
  WEFT_LOG(INFO) << "CA: deleted " << what << " (the namespace left the mesh)";
  return absl::OkStatus();
}

absl::Status RootCertConfigMaps::Sync() {
  std::set<std::string> namespaces;
  std::set<std::string> left;
  std::string bundle;
  {
    absl::MutexLock lock(&mu_);
    namespaces = namespaces_;
    left = left_;
    bundle = bundle_;
    dirty_ = false;
  }
  absl::Status first;
  auto failed = [&](const absl::Status& s) {
    metrics_
        .GetCounter("weft_ca_root_cert_configmap_errors_total",
                    "failed reads or writes of ConfigMaps weft-ca-root-cert")
        .Inc();
    WEFT_LOG(WARNING) << "CA: " << s.message() << " (retried at the next sync)";
    if (first.ok()) first = s;
  };
  for (const auto& ns : left) {
    absl::Status s = RemoveFromNamespace(ns);
    if (!s.ok()) {
      failed(s);
      continue;
    }
    absl::MutexLock lock(&mu_);
    left_.erase(ns);  // if it came back meanwhile, SetNamespaces took it out already
  }
  if (bundle.empty()) return first;
  for (const auto& ns : namespaces) {
    absl::Status s = SyncNamespace(ns, bundle);
    if (!s.ok()) failed(s);
  }
  return first;
}

void RootCertConfigMaps::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void RootCertConfigMaps::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void RootCertConfigMaps::Loop() {
  auto changed_or_stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return dirty_ || stop_; };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&changed_or_stopped), absl::FromChrono(resync_));
      if (stop_) return;
    }
    Sync().IgnoreError();  // logged per namespace
  }
}

}  // namespace weft::ca
