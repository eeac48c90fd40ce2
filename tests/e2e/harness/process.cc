// The e2e harness's process and file helpers; see process.h.
#include "tests/e2e/harness/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "absl/strings/str_split.h"
#include <sstream>
#include <utility>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

#ifndef WEFT_E2E_BINARY_DIR
#error "WEFT_E2E_BINARY_DIR must name the build tree (set by tests/e2e/CMakeLists.txt)"
#endif

namespace weft::e2e {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "e2e harness: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

// What the child reports through the exec pipe when exec fails.
struct ExecFailure {
  int step;  // 0 = dup2 of the log, 1 = execv
  int error;
};

}  // namespace

Subprocess::Subprocess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                       std::string log_path)
    : argv_(std::move(argv)), env_(std::move(env)), log_path_(std::move(log_path)) {}

Subprocess::~Subprocess() { Stop(); }

absl::Status Subprocess::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError("already started");
  if (argv_.empty()) return absl::InvalidArgumentError("empty argv");

  // Everything the child needs is built before fork(): between fork and exec
  // only async-signal-safe calls are allowed (the test has gRPC threads).
  std::vector<char*> child_argv;
  for (std::string& arg : argv_) child_argv.push_back(arg.data());
  child_argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    const std::string key = eq == nullptr ? *e : std::string(*e, eq - *e);
    if (env_.count(key) == 0) env_storage.emplace_back(*e);
  }
  for (const auto& [key, value] : env_) env_storage.push_back(absl::StrCat(key, "=", value));
  std::vector<char*> child_env;
  for (std::string& entry : env_storage) child_env.push_back(entry.data());
  child_env.push_back(nullptr);

  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", log_path_, ": ", std::strerror(errno)));
  }
  // Closed by a successful exec; carries an ExecFailure otherwise.
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    close(log_fd);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int error = errno;
    close(log_fd);
    close(exec_pipe[0]);
    close(exec_pipe[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(error)));
  }
  if (pid == 0) {
    // Child.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    ExecFailure failure{0, 0};
    // Descriptors the test process opened without O_CLOEXEC (sockets of an
    // in-process server, say) must not leak into the child.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0) {
      failure.error = errno;
    } else {
      execve(child_argv[0], child_argv.data(), child_env.data());
      failure = {1, errno};
    }
    ssize_t ignored = write(exec_pipe[1], &failure, sizeof(failure));
    (void)ignored;
    _exit(127);
  }

  close(log_fd);
  close(exec_pipe[1]);
  ExecFailure failure{};
  ssize_t n;
  do {
    n = read(exec_pipe[0], &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  pid_ = pid;
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    Reap(/*block=*/true);
    return absl::InternalError(absl::StrCat(failure.step == 0 ? "redirect output of " : "exec ", argv_[0],
                                            ": ", std::strerror(failure.error)));
  }
  return absl::OkStatus();
}

void Subprocess::Reap(bool block) {
  if (pid_ <= 0 || exit_code_.has_value()) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return;
  if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
  } else {
    exit_code_ = -1;
  }
}

bool Subprocess::Running() {
  Reap(/*block=*/false);
  return pid_ > 0 && !exit_code_.has_value();
}

bool Subprocess::Wait(absl::Duration timeout) {
  return WaitFor([this] { return !Running(); }, timeout, absl::Milliseconds(10));
}

int Subprocess::Stop(absl::Duration grace) {
  if (pid_ <= 0) return -1;
  if (Running()) {
    kill(pid_, SIGTERM);
    if (!Wait(grace)) {
      kill(pid_, SIGKILL);
      Reap(/*block=*/true);
    }
  }
  return exit_code_.value_or(-1);
}

std::string Subprocess::Log() const { return ReadFile(log_path_); }

namespace {

// True when nothing on any local address holds `port` now.
bool FreeOnAllAddresses(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return free;
}

}  // namespace

int PickFreePort() {
  // Tests put workloads on 127.0.0.2, .3, ... and CTest runs them in
  // parallel. Asking the kernel for "any free port" lets two tests get the
  // same number moments apart (it is free again once the first closes its
  // probe), and the second sidecar then fails to listen, or one mesh
  // reaches the other's. So each test process takes ports from its own block
  // of 100 below the kernel's ephemeral range (32768+), chosen by pid, and
  // skips any port that some address already uses.
  constexpr int kFirst = 10000, kLast = 32000, kBlock = 100;
  static std::mutex mu;
  static int next = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (next == 0) next = kFirst + static_cast<int>(getpid() % ((kLast - kFirst) / kBlock)) * kBlock;
  for (int tries = 0; tries < kLast - kFirst; ++tries) {
    const int port = next;
    next = next + 1 >= kLast ? kFirst : next + 1;
    if (FreeOnAllAddresses(port)) return port;
  }
  Die("no free TCP port in 10000-31999");
  return 0;
}

namespace {

bool CanConnect(const std::string& host, int port) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result) != 0) return false;
  bool connected = false;
  for (addrinfo* ai = result; ai != nullptr && !connected; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    connected = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    close(fd);
  }
  freeaddrinfo(result);
  return connected;
}

}  // namespace

bool WaitForTcpPort(const std::string& host, int port, absl::Duration timeout) {
  return WaitFor([&] { return CanConnect(host, port); }, timeout, absl::Milliseconds(20));
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout, absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll);
  }
}

std::string MakeTempDir(const std::string& prefix) {
  std::string templ = absl::StrCat("/tmp/", prefix, "XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) Die(absl::StrCat("mkdtemp ", templ));
  return templ;
}

std::vector<std::string> GreeterBackends(const std::string& client_log) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(client_log, '\n')) {
    size_t at = line.find(": OK backend=");
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(at + 13);
    out.emplace_back(rest.substr(0, rest.find(' ')));
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& content) {
  const std::filesystem::path target(path);
  std::string temp = (target.parent_path() / ("." + target.filename().string() + ".tmpXXXXXX"));
  const int fd = mkstemp(temp.data());
  if (fd < 0) Die(absl::StrCat("mkstemp ", temp));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die(absl::StrCat("write ", temp));
    }
    written += static_cast<size_t>(n);
  }
  // mkstemp creates 0600; config files are normally world-readable.
  fchmod(fd, 0644);
  if (close(fd) != 0) Die(absl::StrCat("close ", temp));
  if (rename(temp.c_str(), path.c_str()) != 0) Die(absl::StrCat("rename ", temp, " to ", path));
}

HttpResponse HttpGet(const std::string& host, int port, const std::string& path, absl::Duration timeout) {
  httplib::Client client(host, port);
  const auto micros = absl::ToInt64Microseconds(timeout);
  client.set_connection_timeout(micros / 1000000, micros % 1000000);
  client.set_read_timeout(micros / 1000000, micros % 1000000);
  client.set_write_timeout(micros / 1000000, micros % 1000000);
  const httplib::Result result = client.Get(path.c_str());
  if (!result) return HttpResponse{};
  return HttpResponse{result->status, result->body};
}

std::string BinaryPath(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path root(WEFT_E2E_BINARY_DIR);
  auto is_executable = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
  };
  // Where the build puts them today; the tree walk below covers moves.
  for (const char* dir : {"server", "proxy", "cli", "examples", "tests/fake_kube", ""}) {
    const fs::path candidate = root / dir / name;
    if (is_executable(candidate)) return candidate.string();
  }
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       it != end; it.increment(ec)) {
    if (ec) break;
    const std::string dir_name = it->path().filename().string();
    if (it->is_directory(ec) && (dir_name == "CMakeFiles" || dir_name == "Testing" || dir_name == "gen" ||
                                 dir_name == "api" || dir_name[0] == '.')) {
      it.disable_recursion_pending();
      continue;
    }
    if (dir_name == name && is_executable(it->path())) return it->path().string();
  }
  return "";
}

int ConnectTcp(const std::string& ip, int port, int recv_timeout_seconds) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  timeval tv{recv_timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int ListenTcp(const std::string& ip, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace weft::e2e
