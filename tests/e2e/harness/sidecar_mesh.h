// A whole mesh on one machine for the weft-proxy e2e tests: weftd in file
// mode (temp --config-dir and --ca-dir, tokens.yaml, xDS over TLS on a free
// port) and apps behind real weft-proxy sidecars, each workload on its own
// loopback IP. Tests write their Services, Workloads and policies into the
// config dir with Apply() and drive a caller's sidecar as its app would.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/e2e/harness/process.h"

namespace weft::e2e {

// One workload: its app's and its sidecar's addresses (all on `ip`) and, once
// started, both processes.
struct SidecarWorkload {
  std::string name, ns, ip, service_account;
  int app_port = PickFreePort();
  int inbound_port = PickFreePort();
  int outbound_port = PickFreePort();
  int admin_port = PickFreePort();
  SubprocessPtr app, proxy;
  std::vector<std::string> proxy_flags;  // added to the sidecar's command line

  // The name its log files carry: "name" or "name.ns" when `with_ns`.
  std::string Label(bool with_ns) const { return with_ns ? name + "." + ns : name; }
};

// A Service `w.name` in `w.ns` (port 80 named http, selecting app: w.name)
// and its one Workload "<name>-0" at w's sidecar inbound port.
std::string ServiceWithWorkloadManifest(const SidecarWorkload& w);

class SidecarMesh {
 public:
  explicit SidecarMesh(const std::string& temp_prefix);

  // Writes tokens.yaml (one token per workload, in its namespace) and the
  // token files, then starts weftd and waits until it is ready.
  absl::Status StartWeftd(const std::vector<const SidecarWorkload*>& workloads);

  // Starts `app_argv` (the app, listening on w.ip:w.app_port) and w's
  // sidecar, and waits until the sidecar has its certificate and config.
  // With an empty `app_argv` the test serves w.ip:w.app_port itself.
  absl::Status StartWorkload(SidecarWorkload& w, std::vector<std::string> app_argv,
                             bool label_with_ns = false);

  // Starts examples/echo (named w.name, with `app_flags`) as w's app, and w's sidecar.
  absl::Status StartEcho(SidecarWorkload& w, const std::vector<std::string>& app_flags = {});
  // For each workload: a Service named after it (port http 80, selecting
  // app=<name>) and a Workload <name>-0 at its inbound port.
  static std::string ServiceManifests(const std::vector<const SidecarWorkload*>& workloads);

  // Writes a manifest file into the config dir (atomically).
  void Apply(const std::string& file, const std::string& yaml) const;

  // A process whose output goes to `log` in the temp dir; null if it could
  // not start (the error is in `status`).
  SubprocessPtr Start(std::vector<std::string> argv, const std::string& log, absl::Status& status) const;

  std::string dir;
  std::string config_dir;
  std::string ca_dir;
  int xds_port = PickFreePort();
  int admin_port = PickFreePort();
  std::vector<std::string> weftd_flags;  // added to weftd's command line
  SubprocessPtr weftd;

 private:
  std::string TokenFile(const SidecarWorkload& w) const;
};

}  // namespace weft::e2e
