#include "ca/token_file_authenticator.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace weft::ca {

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

TokenFileAuthenticator::TokenFileAuthenticator(std::string path, std::string trust_domain,
                                               const common::Clock& clock, std::chrono::milliseconds poll)
    : path_(std::move(path)), trust_domain_(std::move(trust_domain)), clock_(clock), poll_(poll) {}

absl::StatusOr<std::map<std::string, SpiffeId>> TokenFileAuthenticator::Parse(const std::string& yaml,
                                                                              const std::string& trust_domain) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not YAML: ", e.what()));
  }
  std::map<std::string, SpiffeId> out;
  if (!root || root.IsNull()) return out;  // an empty file: no tokens
  std::vector<std::string> errors;
  try {
    if (!root.IsMap() || !root["tokens"] || !root["tokens"].IsSequence()) {
      return absl::InvalidArgumentError("tokens: must be a list of {token, namespace, serviceAccount}");
    }
    const YAML::Node tokens = root["tokens"];
    for (size_t i = 0; i < tokens.size(); ++i) {
      const YAML::Node entry = tokens[i];
      std::string at = absl::StrCat("tokens[", i, "]");
      if (!entry.IsMap()) {
        errors.push_back(at + ": must be a map");
        continue;
      }
      auto field = [&](const char* name) -> std::string {
        const YAML::Node v = entry[name];
        if (!v || !v.IsScalar() || v.Scalar().empty()) {
          errors.push_back(absl::StrCat(at, ".", name, ": required"));
          return "";
        }
        return v.Scalar();
      };
      std::string token = field("token");
      std::string ns = field("namespace");
      std::string sa = field("serviceAccount");
      if (token.empty() || ns.empty() || sa.empty()) continue;
      if (!IsValidIdentitySegment(ns)) errors.push_back(at + ".namespace: not a valid name: " + ns);
      if (!IsValidIdentitySegment(sa)) errors.push_back(at + ".serviceAccount: not a valid name: " + sa);
      SpiffeId id{trust_domain, ns, sa};
      auto [it, inserted] = out.emplace(Sha256Hex(token), id);
      if (!inserted && it->second != id) {
        errors.push_back(at + ".token: the same token is listed for two identities");
      }
    }
  } catch (const YAML::Exception& e) {
    errors.push_back(e.what());
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return out;
}

void TokenFileAuthenticator::MaybeReloadLocked() {
  common::Clock::TimePoint now = clock_.Now();
  if (checked_once_ && now - last_check_ < poll_) return;
  checked_once_ = true;
  last_check_ = now;
  FileStamp stamp;
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0) {
    stamp.exists = true;
    stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.size = st.st_size;
    stamp.inode = st.st_ino;
  }
  if (stamp == stamp_) return;
  stamp_ = stamp;
  if (!stamp.exists) {
    if (!tokens_.empty()) {
      WEFT_LOG(WARNING) << "CA tokens: " << path_ << " is gone; no token is valid now";
    }
    tokens_.clear();
    return;
  }
  std::ifstream in(path_, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  auto parsed = Parse(buf.str(), trust_domain_);
  if (!parsed.ok()) {
    WEFT_LOG(ERROR) << "CA tokens: " << path_ << ": " << parsed.status().message()
                    << " (keeping the previous " << tokens_.size() << " token(s))";
    return;
  }
  tokens_ = std::move(*parsed);
  WEFT_LOG(INFO) << "CA tokens: loaded " << tokens_.size() << " token(s) from " << path_;
}

absl::StatusOr<std::optional<SpiffeId>> TokenFileAuthenticator::Authenticate(const CallerCredentials& credentials) {
  if (credentials.bearer_token.empty()) return std::nullopt;
  std::string digest = Sha256Hex(credentials.bearer_token);
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  auto it = tokens_.find(digest);
  if (it == tokens_.end()) return absl::UnauthenticatedError("unknown bearer token");
  return it->second;
}

size_t TokenFileAuthenticator::TokenCount() {
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  return tokens_.size();
}

}  // namespace weft::ca
