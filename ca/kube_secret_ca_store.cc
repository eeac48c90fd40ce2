#include "ca/kube_secret_ca_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace weft::ca {
namespace {

using nlohmann::json;

bool IsDns1123Label(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return false;
    }
  }
  return absl::ascii_isalnum(static_cast<unsigned char>(s.front())) &&
         absl::ascii_isalnum(static_cast<unsigned char>(s.back()));
}

// The message of a Kubernetes Status body, or the HTTP code.
std::string ApiError(const KubeHttpResponse& r) {
  json status = json::parse(r.body, nullptr, false);
  if (status.is_object() && status.contains("message") && status["message"].is_string()) {
    return absl::StrCat("HTTP ", r.status, " ", status.value("reason", ""), ": ",
                        status["message"].get<std::string>());
  }
  return absl::StrCat("HTTP ", r.status);
}

class NoLock final : public CaStore::Lock {};

}  // namespace

absl::StatusOr<std::unique_ptr<KubeSecretCaStore>> KubeSecretCaStore::Create(const std::string& ref,
                                                                             KubeHttp http) {
  std::vector<std::string> parts = absl::StrSplit(ref, '/');
  if (parts.size() != 2 || !IsDns1123Label(parts[0], 63) || parts[0].find('.') != std::string::npos ||
      !IsDns1123Label(parts[1], 253)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "want NAMESPACE/NAME (lowercase DNS names) such as weft-system/weft-ca, got \"", ref, "\""));
  }
  return std::unique_ptr<KubeSecretCaStore>(new KubeSecretCaStore(parts[0], parts[1], std::move(http)));
}

std::string KubeSecretCaStore::Path() const {
  return absl::StrCat("/api/v1/namespaces/", ns_, "/secrets/", name_);
}

absl::Status KubeSecretCaStore::Refresh() {
  ASSIGN_OR_RETURN(KubeHttpResponse r, http_("GET", Path(), ""));
  if (r.status == 404) {
    known_ = true;
    exists_ = false;
    resource_version_.clear();
    data_.clear();
    return absl::OkStatus();
  }
  if (r.status != 200) return absl::UnavailableError(absl::StrCat("reading ", Describe(), ": ", ApiError(r)));
  json secret = json::parse(r.body, nullptr, false);
  if (!secret.is_object() || !secret["metadata"].is_object() ||
      !secret["metadata"]["resourceVersion"].is_string()) {
    return absl::InternalError(absl::StrCat("reading ", Describe(), ": not a Secret object"));
  }
  CaEntries data;
  if (secret.contains("data") && !secret["data"].is_null()) {
    if (!secret["data"].is_object())
      return absl::InvalidArgumentError(absl::StrCat(Describe(), ": data: not a map"));
    for (const auto& [key, value] : secret["data"].items()) {
      std::string decoded;
      if (!value.is_string() || !absl::Base64Unescape(value.get<std::string>(), &decoded)) {
        return absl::InvalidArgumentError(absl::StrCat(Describe(), ": data.", key, ": not base64"));
      }
      data[key] = std::move(decoded);
    }
  }
  known_ = true;
  exists_ = true;
  resource_version_ = secret["metadata"]["resourceVersion"].get<std::string>();
  data_ = std::move(data);
  return absl::OkStatus();
}

absl::StatusOr<CaEntries> KubeSecretCaStore::Load(const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Refresh());
  CaEntries out;
  for (const auto& name : names) {
    auto it = data_.find(name);
    if (it != data_.end()) out[name] = it->second;
  }
  return out;
}

absl::Status KubeSecretCaStore::Save(const CaEntries& entries, const std::vector<std::string>& remove) {
  absl::MutexLock lock(&mu_);
  if (!known_) RETURN_IF_ERROR(Refresh());
  CaEntries next = data_;
  for (const auto& name : remove) next.erase(name);
  for (const auto& [name, value] : entries) next[name] = value;
  json data = json::object();
  for (const auto& [name, value] : next) data[name] = absl::Base64Escape(value);
  json metadata = {
      {"name", name_}, {"namespace", ns_}, {"labels", {{"app.kubernetes.io/managed-by", "weftd"}}}};
  if (exists_) metadata["resourceVersion"] = resource_version_;
  json secret = {
      {"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", metadata}, {"type", "Opaque"}, {"data", data}};
  const std::string method = exists_ ? "PUT" : "POST";
  const std::string path = exists_ ? Path() : absl::StrCat("/api/v1/namespaces/", ns_, "/secrets");
  ASSIGN_OR_RETURN(KubeHttpResponse r, http_(method, path, secret.dump()));
  if (r.status == 409 || (exists_ && r.status == 404)) {
    // Another writer was first (or the Secret went away): what we saw is stale.
    known_ = false;
    return absl::AbortedError(absl::StrCat(Describe(), " was changed by another writer (", ApiError(r), ")"));
  }
  if (r.status != 200 && r.status != 201) {
    return absl::UnavailableError(absl::StrCat("writing ", Describe(), ": ", ApiError(r)));
  }
  json stored = json::parse(r.body, nullptr, false);
  if (!stored.is_object() || !stored["metadata"].is_object() ||
      !stored["metadata"]["resourceVersion"].is_string()) {
    known_ = false;  // written, but re-read before the next write
    return absl::OkStatus();
  }
  exists_ = true;
  resource_version_ = stored["metadata"]["resourceVersion"].get<std::string>();
  data_ = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CaStore::Lock>> KubeSecretCaStore::LockExclusive() {
  return std::unique_ptr<CaStore::Lock>(new NoLock());
}

}  // namespace weft::ca
