#include "discovery/kube_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "discovery/yaml_to_json.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read \"", path, "\""));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return absl::StrCat(base_dir, "/", path);
}

// The entry named `name` in a kubeconfig list (clusters, users, contexts).
const json* FindNamed(const json& config, const char* list, const std::string& name, const char* inner) {
  auto it = config.find(list);
  if (it == config.end() || !it->is_array()) return nullptr;
  for (const json& entry : *it) {
    if (entry.is_object() && entry.value("name", "") == name) {
      auto body = entry.find(inner);
      if (body != entry.end() && body->is_object()) return &*body;
      static const json kEmpty = json::object();
      return &kEmpty;
    }
  }
  return nullptr;
}

std::string Str(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

// PEM from `<field>-data` (base64) or the file named by `<field>`.
absl::StatusOr<std::string> PemField(const json& o, const std::string& field, const std::string& base_dir,
                                     const std::string& where) {
  const std::string data = Str(o, (field + "-data").c_str());
  if (!data.empty()) {
    std::string pem;
    if (!absl::Base64Unescape(data, &pem)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".", field, "-data: not valid base64"));
    }
    return pem;
  }
  const std::string file = Str(o, field.c_str());
  if (file.empty()) return std::string();
  return ReadWholeFile(Resolve(file, base_dir), absl::StrCat(where, ".", field));
}

absl::Status ParseServer(const std::string& server, KubeConfig& config) {
  std::string rest;
  if (absl::StartsWith(server, "https://")) {
    config.scheme = "https";
    config.port = 443;
    rest = server.substr(8);
  } else if (absl::StartsWith(server, "http://")) {
    config.scheme = "http";
    config.port = 80;
    rest = server.substr(7);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("server \"", server, "\": must start with https:// or http://"));
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    config.path_prefix = rest.substr(slash);
    while (!config.path_prefix.empty() && config.path_prefix.back() == '/') config.path_prefix.pop_back();
  }
  std::string port_text;
  if (absl::StartsWith(authority, "[")) {  // [IPv6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("server \"", server, "\": bad IPv6 address"));
    config.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return absl::InvalidArgumentError(absl::StrCat("server \"", server, "\": bad port"));
      port_text = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    config.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (config.host.empty()) return absl::InvalidArgumentError(absl::StrCat("server \"", server, "\": no host"));
  if (!port_text.empty() && (!absl::SimpleAtoi(port_text, &config.port) || config.port < 1 || config.port > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("server \"", server, "\": bad port"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string KubeConfig::Url() const {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat(scheme, "://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port, path_prefix);
}

absl::StatusOr<KubeConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                           const std::string& context_override, const std::string& source) {
  YamlStream stream = ParseYamlStream(text);
  if (stream.error) return absl::InvalidArgumentError(absl::StrCat(source, ": ", stream.error->ToString()));
  if (stream.documents.empty() || !stream.documents[0].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a kubeconfig (expected a YAML mapping)"));
  }
  const json& doc = stream.documents[0];
  std::string context_name = context_override.empty() ? Str(doc, "current-context") : context_override;
  if (context_name.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no current-context"));
  const json* context = FindNamed(doc, "contexts", context_name, "context");
  if (context == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": context \"", context_name, "\" not found"));
  }
  KubeConfig config;
  config.source = absl::StrCat(source, " (context ", context_name, ")");
  config.namespace_ = Str(*context, "namespace");
  const std::string cluster_name = Str(*context, "cluster");
  const json* cluster = FindNamed(doc, "clusters", cluster_name, "cluster");
  if (cluster == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(config.source, ": cluster \"", cluster_name, "\" not found"));
  }
  const std::string where = absl::StrCat(config.source, ": cluster \"", cluster_name, "\"");
  if (cluster->value("insecure-skip-tls-verify", false)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": insecure-skip-tls-verify is not supported; weftd always verifies the API server"));
  }
  if (!Str(*cluster, "proxy-url").empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": proxy-url is not supported"));
  }
  const std::string server = Str(*cluster, "server");
  if (server.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": no server"));
  if (absl::Status s = ParseServer(server, config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
  }
  ASSIGN_OR_RETURN(config.ca_pem, PemField(*cluster, "certificate-authority", base_dir, where));

  const std::string user_name = Str(*context, "user");
  if (!user_name.empty()) {
    const json* user = FindNamed(doc, "users", user_name, "user");
    if (user == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(config.source, ": user \"", user_name, "\" not found"));
    }
    const std::string uwhere = absl::StrCat(config.source, ": user \"", user_name, "\"");
    if (user->contains("exec") || user->contains("auth-provider")) {
      return absl::InvalidArgumentError(absl::StrCat(
          uwhere, ": exec and auth-provider credentials are not supported; use a token, a token file or a client "
                  "certificate (e.g. a service account's kubeconfig)"));
    }
    if (!Str(*user, "username").empty()) {
      return absl::InvalidArgumentError(absl::StrCat(uwhere, ": basic authentication is not supported"));
    }
    ASSIGN_OR_RETURN(config.client_cert_pem, PemField(*user, "client-certificate", base_dir, uwhere));
    ASSIGN_OR_RETURN(config.client_key_pem, PemField(*user, "client-key", base_dir, uwhere));
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(uwhere, ": client-certificate and client-key must be given together"));
    }
    config.token = Str(*user, "token");
    const std::string token_file = Str(*user, "tokenFile");
    if (config.token.empty() && !token_file.empty()) config.token_file = Resolve(token_file, base_dir);
  }
  return config;
}

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, "--kubeconfig"));
  std::string dir;
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) dir = path.substr(0, slash);
  return ParseKubeconfig(text, dir.empty() && slash == 0 ? "/" : dir, context, "kubeconfig " + path);
}

absl::StatusOr<KubeConfig> LoadInClusterConfig(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "not running in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set); "
        "pass --kubeconfig");
  }
  KubeConfig config;
  config.source = "in-cluster";
  config.host = host;
  if (!absl::SimpleAtoi(port, &config.port) || config.port < 1 || config.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("KUBERNETES_SERVICE_PORT=\"", port, "\" is not a port"));
  }
  ASSIGN_OR_RETURN(config.ca_pem, ReadWholeFile(paths.ca_file, "in-cluster CA"));
  // Read once now to fail early; KubeClient re-reads it as it rotates.
  ASSIGN_OR_RETURN(std::string token, ReadWholeFile(paths.token_file, "in-cluster service-account token"));
  if (token.empty()) return absl::FailedPreconditionError(absl::StrCat(paths.token_file, " is empty"));
  config.token_file = paths.token_file;
  if (auto ns = ReadWholeFile(paths.namespace_file, "namespace"); ns.ok()) config.namespace_ = *ns;
  return config;
}

}  // namespace weft::discovery
