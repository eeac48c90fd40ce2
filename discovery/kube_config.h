// How weftd reaches the Kubernetes API server: the server URL, how it is
// authenticated (CA bundle), and how weftd authenticates itself (client
// certificate or bearer token). Built from a kubeconfig file (`weftd
// --kubeconfig`, the current context) or from the in-cluster service-account
// environment. Read by KubeClient; never leaves discovery/.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace weft::discovery {

struct KubeConfig {
  std::string scheme = "https";  // "https" (always verified) or "http" (tests, proxies on loopback)
  std::string host;              // name or IP, without brackets
  int port = 443;
  std::string path_prefix;       // e.g. "/k8s/clusters/c-1" behind a proxy; "" usually
  std::string ca_pem;            // trusted roots; "" -> the system's roots
  std::string client_cert_pem;   // with client_key_pem: mutual TLS
  std::string client_key_pem;
  std::string token;             // a static bearer token
  std::string token_file;        // re-read whenever it changes (projected service-account tokens rotate)
  std::string namespace_;        // the context's namespace, informational
  std::string source;            // "kubeconfig /path (context x)" or "in-cluster", for messages

  std::string Url() const;  // scheme://host:port + prefix
};

// Parses a kubeconfig file: the current context (or `context` when given),
// its cluster (server, certificate-authority or -data) and user
// (client-certificate/-key or -data, token, tokenFile). Relative paths are
// resolved against the kubeconfig's directory, as kubectl does.
// insecure-skip-tls-verify, exec and auth-provider users are refused with an
// error that says so: TLS is always verified, and weftd runs no plugins.
absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

// The same from the kubeconfig text; `base_dir` resolves relative paths.
absl::StatusOr<KubeConfig> ParseKubeconfig(const std::string& text, const std::string& base_dir,
                                           const std::string& context = "", const std::string& source = "");

struct InClusterPaths {
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

// The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT from the
// environment, the service-account token file (re-read when it rotates) and
// the cluster CA.
absl::StatusOr<KubeConfig> LoadInClusterConfig(const InClusterPaths& paths = {});

}  // namespace weft::discovery
