// fake-kube-apiserver: the fake Kubernetes API server as a process, for e2e
// tests. Objects are created, changed and deleted over the ordinary
// Kubernetes REST API (POST/PUT/PATCH/DELETE); faults through POST /fake/*
// (see fake_api_server.cc). Prints nothing but logs; writes the chosen port to
// --port-file and, with --kubeconfig, a kubeconfig that points at itself.
//
//   fake-kube-apiserver --port=0 --port-file=PATH [--kubeconfig=PATH] [--token=T]
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/fake_kube/fake_api_server.h"

namespace {

bool WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::fake_kube::FakeApiServerOptions options;
  std::string port_file, kubeconfig, token;
  // --review-token=TOKEN:NAMESPACE:SERVICEACCOUNT:AUDIENCE[:expired], repeatable:
  // tokens that TokenReview knows.
  std::vector<std::pair<std::string, weft::fake_kube::FakeTokenInfo>> review_tokens;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) -> std::string { return arg.substr(std::strlen(flag)); };
    if (absl::StartsWith(arg, "--port=")) {
      if (!absl::SimpleAtoi(value("--port="), &options.port)) {
        std::fprintf(stderr, "fake-kube-apiserver: --port: not a number\n");
        return 2;
      }
    } else if (absl::StartsWith(arg, "--port-file=")) {
      port_file = value("--port-file=");
    } else if (absl::StartsWith(arg, "--kubeconfig=")) {
      kubeconfig = value("--kubeconfig=");
    } else if (absl::StartsWith(arg, "--token=")) {
      token = value("--token=");
    } else if (absl::StartsWith(arg, "--review-token=")) {
      std::vector<std::string> parts = absl::StrSplit(value("--review-token="), ':');
      if (parts.size() < 4 || parts.size() > 5 || (parts.size() == 5 && parts[4] != "expired")) {
        std::fprintf(stderr, "fake-kube-apiserver: --review-token: want TOKEN:NS:SA:AUDIENCE[:expired]\n");
        return 2;
      }
      weft::fake_kube::FakeTokenInfo info;
      info.username = absl::StrCat("system:serviceaccount:", parts[1], ":", parts[2]);
      info.uid = parts[0] + "-uid";
      info.audiences = {parts[3]};
      info.expired = parts.size() == 5;
      review_tokens.emplace_back(parts[0], std::move(info));
    } else {
      std::fprintf(stderr, "fake-kube-apiserver: unknown flag %s\n", arg.c_str());
      return 2;
    }
  }
  if (!token.empty()) options.api_tokens.insert(token);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  weft::fake_kube::FakeApiServer server(options);
  for (auto& [t, info] : review_tokens) server.AddToken(t, std::move(info));
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "fake-kube-apiserver: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (!kubeconfig.empty()) {
    std::string user = token.empty() ? "{}" : absl::StrCat("{token: ", token, "}");
    std::string text = absl::StrCat("apiVersion: v1\nkind: Config\ncurrent-context: fake\n",
                                    "clusters:\n- name: fake\n  cluster: {server: \"", server.Url(), "\"}\n",
                                    "users:\n- name: fake\n  user: ", user, "\n",
                                    "contexts:\n- name: fake\n  context: {cluster: fake, user: fake}\n");
    if (!WriteFileAtomically(kubeconfig, text)) {
      std::fprintf(stderr, "fake-kube-apiserver: cannot write %s\n", kubeconfig.c_str());
      return 1;
    }
  }
  if (!port_file.empty() && !WriteFileAtomically(port_file, std::to_string(server.port()) + "\n")) {
    std::fprintf(stderr, "fake-kube-apiserver: cannot write %s\n", port_file.c_str());
    return 1;
  }
  std::fprintf(stderr, "fake-kube-apiserver: serving %s\n", server.Url().c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  server.Stop();
  return 0;
}
