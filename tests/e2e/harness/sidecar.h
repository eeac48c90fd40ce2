// One meshed workload of the weft-proxy e2e tests: an app (echo-server)
// and its weft-proxy sidecar on the workload's own loopback IP, with free
// ports for the app, the sidecar's listeners and its admin.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {

struct SidecarWorkload {
  std::string name, ip, sa;
  int app_port = PickFreePort();
  int inbound_port = PickFreePort();
  int outbound_port = PickFreePort();
  int admin_port = PickFreePort();
  SubprocessPtr app, proxy;

  // The weft-proxy command line for this workload against weftd on
  // 127.0.0.1:`xds_port`, with the token in `token_file`.
  std::vector<std::string> ProxyArgv(int xds_port, const std::string& token_file,
                                     const std::string& ca_dir) const {
    return {BinaryPath("weft-proxy"),
            absl::StrCat("--xds=127.0.0.1:", xds_port),
            "--namespace=shop",
            "--service-account=" + sa,
            "--token-file=" + token_file,
            "--trust-bundle=" + ca_dir + "/root-cert.pem",
            absl::StrCat("--outbound-addr=", ip, ":", outbound_port),
            absl::StrCat("--inbound-addr=", ip, ":", inbound_port),
            absl::StrCat("--admin-addr=", ip, ":", admin_port),
            absl::StrCat("--app-addr=", ip, ":", app_port)};
  }
  // Its Workload manifest (namespace shop, label app: `app`), the port being the sidecar's inbound port.
  std::string WorkloadManifest(const std::string& workload_name, const std::string& app) const {
    return absl::StrCat("---\napiVersion: weft.io/v1alpha1\nkind: Workload\nmetadata: {name: ", workload_name,
                        ", namespace: shop, labels: {app: ", app, "}}\nspec: {address: ", ip,
                        ", ports: {http: ", inbound_port, "}, serviceAccount: ", sa, "}\n");
  }
  // The echo-server command line for this workload's app.
  std::vector<std::string> AppArgv() const {
    return {BinaryPath("echo-server"), absl::StrCat("--addr=", ip, ":", app_port), "--name=" + name};
  }
};

// weftd in file mode on `config_dir`, TLS xDS on 127.0.0.1:`xds_port`, admin on 127.0.0.1:`admin_port`.
inline std::vector<std::string> WeftdFileModeArgv(const std::string& config_dir, const std::string& ca_dir,
                                                  int xds_port, int admin_port) {
  return {BinaryPath("weftd"), "--config-dir=" + config_dir, "--ca-dir=" + ca_dir,
          absl::StrCat("--xds-addr=127.0.0.1:", xds_port),
          absl::StrCat("--admin-addr=127.0.0.1:", admin_port)};
}

// Starts `argv` with its output in `log_path`; null when it cannot start.
inline SubprocessPtr StartProcess(std::vector<std::string> argv, const std::string& log_path) {
  if (argv.empty() || argv[0].empty()) return nullptr;
  auto p = std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{}, log_path);
  if (!p->Start().ok()) return nullptr;
  return p;
}

}  // namespace weft::e2e
