// The e2e test harness: runs Weft's real binaries (weftd, weft-proxy, the
// greeter examples) as child processes of a Catch2 test and gives the test the
// small tools it needs around them: free ports, readiness polling, temp dirs,
// atomic file writes for file-mode config, and plain HTTP GETs for the admin
// API. Used by every test under tests/e2e/.
//
// Not thread-safe: drive each Subprocess from the thread that started it (the
// children are killed when that thread exits, see PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace weft::e2e {

// A child process whose stdout and stderr go to one log file. The child gets
// SIGKILL if the test process dies, so a crashed or killed test leaves no
// strays behind.
class Subprocess {
 public:
  // argv[0] is the binary's path (no PATH lookup). env adds to, or overrides,
  // the test's own environment. The log file is created or truncated.
  Subprocess(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string log_path);
  ~Subprocess();  // Stop()s the child.

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Forks and execs. Fails if the log cannot be opened or exec fails (a bad
  // path is reported here, not as a mysterious exit code later).
  absl::Status Start();

  // True while the child has been started and has not exited. Reaps it when
  // it has.
  bool Running();

  // Waits for the child to exit on its own. False on timeout (it still runs).
  bool Wait(absl::Duration timeout);

  // SIGTERM, then SIGKILL if it is still alive after `grace`. Returns the exit
  // code (see ExitCode()); -1 if it was never started.
  int Stop(absl::Duration grace = absl::Seconds(5));

  // The exit code once the child has been reaped: its exit status, or
  // 128 + signal number when a signal ended it (the shell's convention).
  std::optional<int> ExitCode() const { return exit_code_; }

  // Everything the child has written to stdout and stderr so far.
  std::string Log() const;

  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }

 private:
  // Non-blocking reap; records exit_code_.
  void Reap(bool block);

  std::vector<std::string> argv_;
  std::map<std::string, std::string> env_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

using SubprocessPtr = std::unique_ptr<Subprocess>;

// A TCP port that no local address was using a moment ago, from a block of
// ports this test process has to itself (by pid; see process.cc), so that
// tests running in parallel do not pick the same one.
int PickFreePort();

// Polls until a TCP connect to host:port succeeds. False on timeout.
bool WaitForTcpPort(const std::string& host, int port, absl::Duration timeout);

// Polls `condition` every `poll` until it returns true. False on timeout.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             absl::Duration poll = absl::Milliseconds(50));

// A fresh directory /tmp/<prefix>XXXXXX. Left in place after the test so the
// logs in it can be read after a failure. Aborts if /tmp is unusable.
std::string MakeTempDir(const std::string& prefix);

// Writes `content` to `path` atomically: a temp file in the same directory,
// then rename(), so a watcher (weftd's file mode) never sees half a file.
// Aborts on an I/O error; the test environment is broken then.
void WriteFile(const std::string& path, const std::string& content);

// The backends named in greeter-client's "rpc N: OK backend=NAME ..." lines,
// in order.
std::vector<std::string> GreeterBackends(const std::string& client_log);

// The whole content of a file; "" when it cannot be read.
std::string ReadFile(const std::string& path);

struct HttpResponse {
  int status = 0;  // 0 when the server was unreachable or the request failed
  std::string body;
};

// A plain-HTTP GET, e.g. HttpGet("127.0.0.1", admin_port, "/readyz").
HttpResponse HttpGet(const std::string& host, int port, const std::string& path,
                     absl::Duration timeout = absl::Seconds(5));

// A blocking TCP connection to ip:port whose reads give up after
// `recv_timeout_seconds` (raw-socket clients of e2e tests); -1 on failure.
int ConnectTcp(const std::string& ip, int port, int recv_timeout_seconds);
// A blocking listening socket on ip:port (apps written in a test); -1 on failure.
int ListenTcp(const std::string& ip, int port);
// Writes all of `data` to `fd`; false when the peer went away.
bool SendAll(int fd, std::string_view data);

// The path of a built binary (weftd, weft-proxy, greeter-server, ...) under
// the build tree; empty if it has not been built.
std::string BinaryPath(const std::string& name);

}  // namespace weft::e2e
