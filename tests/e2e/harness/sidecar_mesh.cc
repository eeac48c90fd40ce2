#include "tests/e2e/harness/sidecar_mesh.h"

#include <sys/stat.h>

#include <map>

#include "absl/strings/str_cat.h"

namespace weft::e2e {

std::string ServiceWithWorkloadManifest(const SidecarWorkload& w) {
  return absl::StrCat(
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: ", w.name, ", namespace: ", w.ns,
      "}\nspec:\n  selector: {app: ", w.name,
      "}\n  ports: [{name: http, port: 80}]\n---\napiVersion: weft.io/v1alpha1\nkind: Workload\n"
      "metadata: {name: ",
      w.name, "-0, namespace: ", w.ns, ", labels: {app: ", w.name, "}}\nspec: {address: ", w.ip,
      ", ports: {http: ", w.inbound_port, "}, serviceAccount: ", w.service_account, "}\n");
}

SidecarMesh::SidecarMesh(const std::string& temp_prefix)
    : dir(MakeTempDir(temp_prefix)), config_dir(dir + "/config"), ca_dir(dir + "/ca") {
  mkdir(config_dir.c_str(), 0755);
}

absl::Status SidecarMesh::StartEcho(SidecarWorkload& w, const std::vector<std::string>& app_flags) {
  std::vector<std::string> argv = {BinaryPath("echo-server"), absl::StrCat("--addr=", w.ip, ":", w.app_port),
                                   "--name=" + w.name};
  argv.insert(argv.end(), app_flags.begin(), app_flags.end());
  return StartWorkload(w, std::move(argv));
}

std::string SidecarMesh::TokenFile(const SidecarWorkload& w) const {
  return absl::StrCat(dir, "/", w.service_account, ".", w.ns, ".token");
}

SubprocessPtr SidecarMesh::Start(std::vector<std::string> argv, const std::string& log,
                                 absl::Status& status) const {
  if (argv.empty() || argv[0].empty()) {
    status = absl::FailedPreconditionError("binary not built for " + log);
    return nullptr;
  }
  auto p =
      std::make_unique<Subprocess>(std::move(argv), std::map<std::string, std::string>{}, dir + "/" + log);
  status = p->Start();
  if (!status.ok()) return nullptr;
  return p;
}

absl::Status SidecarMesh::StartWeftd(const std::vector<const SidecarWorkload*>& workloads) {
  std::string tokens = "tokens:\n";
  for (const SidecarWorkload* w : workloads) {
    const std::string token = absl::StrCat(w->service_account, "-", w->ns, "-secret");
    absl::StrAppend(&tokens, "- {token: ", token, ", namespace: ", w->ns,
                    ", serviceAccount: ", w->service_account, "}\n");
    WriteFile(TokenFile(*w), token + "\n");
  }
  Apply("tokens.yaml", tokens);
  absl::Status status;
  std::vector<std::string> argv = {BinaryPath("weftd"), "--config-dir=" + config_dir, "--ca-dir=" + ca_dir,
                                   absl::StrCat("--xds-addr=127.0.0.1:", xds_port),
                                   absl::StrCat("--admin-addr=127.0.0.1:", admin_port)};
  argv.insert(argv.end(), weftd_flags.begin(), weftd_flags.end());
  weftd = Start(std::move(argv), "weftd.log", status);
  if (!status.ok()) return status;
  if (!WaitFor([&] { return HttpGet("127.0.0.1", admin_port, "/readyz").status == 200; },
               absl::Seconds(15))) {
    return absl::DeadlineExceededError("weftd not ready; see " + dir + "/weftd.log");
  }
  return absl::OkStatus();
}

absl::Status SidecarMesh::StartWorkload(SidecarWorkload& w, std::vector<std::string> app_argv,
                                        bool label_with_ns) {
  const std::string label = w.Label(label_with_ns);
  absl::Status status;
  if (!app_argv.empty()) {
    w.app = Start(std::move(app_argv), label + ".log", status);
    if (!status.ok()) return status;
  }
  std::vector<std::string> argv = {BinaryPath("weft-proxy"),
                                   absl::StrCat("--xds=127.0.0.1:", xds_port),
                                   "--namespace=" + w.ns,
                                   "--service-account=" + w.service_account,
                                   "--token-file=" + TokenFile(w),
                                   "--trust-bundle=" + ca_dir + "/root-cert.pem",
                                   absl::StrCat("--outbound-addr=", w.ip, ":", w.outbound_port),
                                   absl::StrCat("--inbound-addr=", w.ip, ":", w.inbound_port),
                                   absl::StrCat("--admin-addr=", w.ip, ":", w.admin_port),
                                   absl::StrCat("--app-addr=", w.ip, ":", w.app_port)};
  argv.insert(argv.end(), w.proxy_flags.begin(), w.proxy_flags.end());
  w.proxy = Start(std::move(argv), label + "-proxy.log", status);
  if (!status.ok()) return status;
  if (!WaitFor([&] { return HttpGet(w.ip, w.admin_port, "/ready").status == 200; }, absl::Seconds(20))) {
    return absl::DeadlineExceededError("sidecar of " + label + " not ready; see " + dir + "/" + label +
                                       "-proxy.log");
  }
  return absl::OkStatus();
}

std::string SidecarMesh::ServiceManifests(const std::vector<const SidecarWorkload*>& workloads) {
  std::string manifests;
  for (const SidecarWorkload* w : workloads) manifests += ServiceWithWorkloadManifest(*w);
  return manifests;
}

void SidecarMesh::Apply(const std::string& file, const std::string& yaml) const {
  WriteFile(config_dir + "/" + file, yaml);
}

}  // namespace weft::e2e
