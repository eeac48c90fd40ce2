#include "ca/file_ca_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace weft::ca {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return absl::OkStatus();
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? absl::OkStatus() : absl::FailedPreconditionError(dir + " is not a directory");
  }
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    // Parents get ordinary permissions; only the CA directory itself is private.
    if (absl::Status s = MakeDirs(dir.substr(0, slash), 0755); !s.ok()) return s;
  }
  if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return Errno("cannot create " + dir);
  return absl::OkStatus();
}

class FileLock final : public CaStore::Lock {
 public:
  explicit FileLock(int fd) : fd_(fd) {}
  ~FileLock() override {
    flock(fd_, LOCK_UN);
    close(fd_);
  }

 private:
  int fd_;
};

bool IsPrivate(const std::string& name) { return absl::EndsWith(name, "key.pem"); }

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, const std::string& content, int mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot write " + tmp);
  fchmod(fd, static_cast<mode_t>(mode));  // umask does not loosen or tighten what we ask for
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = Errno("cannot write " + tmp);
      close(fd);
      unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    absl::Status s = Errno("cannot write " + tmp);
    unlink(tmp.c_str());
    return s;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno("cannot replace " + path);
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileCaStore>> FileCaStore::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("the CA directory is empty");
  struct stat st {};
  bool existed = stat(dir.c_str(), &st) == 0;
  if (absl::Status s = MakeDirs(dir, 0700); !s.ok()) return s;
  if (!existed) {
    chmod(dir.c_str(), 0700);
  } else if ((st.st_mode & 077) != 0) {
    WEFT_LOG(WARNING) << "CA directory " << dir << " is accessible to other users (mode "
                      << std::oct << (st.st_mode & 0777) << std::dec << "); 0700 is expected";
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) return Errno("cannot use the CA directory " + dir);
  return std::unique_ptr<FileCaStore>(new FileCaStore(dir));
}

absl::StatusOr<CaEntries> FileCaStore::Load(const std::vector<std::string>& names) {
  CaEntries out;
  for (const auto& name : names) {
    std::string path = dir_ + "/" + name;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return Errno("cannot read " + path);
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return Errno("cannot read " + path);
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) return Errno("cannot read " + path);
    out[name] = buf.str();
  }
  return out;
}

absl::Status FileCaStore::Save(const CaEntries& entries, const std::vector<std::string>& remove) {
  // Public files last: a reader that sees a new trust bundle finds the keys behind it already in place.
  for (bool private_pass : {true, false}) {
    for (const auto& [name, content] : entries) {
      if (IsPrivate(name) != private_pass) continue;
      if (absl::Status s = WriteFileAtomically(dir_ + "/" + name, content, private_pass ? 0600 : 0644); !s.ok()) {
        return s;
      }
    }
  }
  for (const auto& name : remove) {
    if (unlink((dir_ + "/" + name).c_str()) != 0 && errno != ENOENT) return Errno("cannot remove " + name);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CaStore::Lock>> FileCaStore::LockExclusive() {
  std::string path = dir_ + "/.lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open " + path);
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      absl::Status s = Errno("cannot lock " + path);
      close(fd);
      return s;
    }
  }
  return std::unique_ptr<Lock>(new FileLock(fd));
}

}  // namespace weft::ca
