#include "discovery/file_registry.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "discovery/manifest_parser.h"

namespace weft::discovery {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kWatchMask = IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM |
                                IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                                IN_EXCL_UNLINK;

// The CA's file-mode tokens live next to the manifests but are not one.
constexpr char kTokensFile[] = "tokens.yaml";

bool IsHidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

bool IsManifestName(const std::string& name) {
  if (IsHidden(name) || name == kTokensFile) return false;
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml") || absl::EndsWith(name, ".json");
}

std::string Join(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return absl::StrCat(dir, "/", name);
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, Join(dir, ""));
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Reads a whole file; on failure returns the reason.
absl::Status ReadFile(const std::string& path, size_t max_bytes, std::string& out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot read file: ", ErrnoText(errno)));
  struct stat st;
  if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("file too large (", st.st_size, " bytes, at most ", max_bytes, ")"));
  }
  out.clear();
  char buf[64 * 1024];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("cannot read file: ", ErrnoText(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("file too large (at most ", max_bytes, " bytes)"));
    }
  }
  close(fd);
  return absl::OkStatus();
}

ConfigError FileError(const std::string& file, std::string reason) {
  ConfigError e;
  e.source = SourceRef{file, -1};
  e.reason = std::move(reason);
  return e;
}

// The objects a file contributes now: what it produced this time, plus the
// last good version of each document that is now invalid.
std::vector<MeshObject> WithLastGood(const ParsedManifest& parsed, const std::vector<MeshObject>* previous) {
  std::vector<MeshObject> objects = parsed.objects;
  if (previous == nullptr || parsed.invalid_keys.empty()) return objects;
  std::set<std::string> present;
  for (const MeshObject& o : objects) present.insert(MeshObjectKey(o));
  for (const std::string& key : parsed.invalid_keys) {
    if (present.count(key) > 0) continue;
    for (const MeshObject& o : *previous) {
      if (MeshObjectKey(o) == key) {
        objects.push_back(o);
        present.insert(key);
        break;
      }
    }
  }
  return objects;
}

std::string Summary(const MeshSnapshot& s) {
  return absl::StrCat(s.services.size(), " services, ", s.endpoint_slices.size(), " endpoint slices, ",
                      s.workloads.size(), " workloads, ", s.pods.size(), " pods, ", s.namespaces.size(),
                      " namespaces, ", s.policies.size(), " policies, ", s.errors.size(), " errors");
}

}  // namespace

// The manifest files below the directory, and the directories that could not
// be listed (whose files keep their last good state).
struct FileRegistry::ScanResult {
  std::vector<std::string> files;                                    // sorted
  std::vector<std::pair<std::string, std::string>> unreadable_dirs;  // dir, reason
};

FileRegistry::FileRegistry(std::string config_dir, common::MetricsRegistry& metrics,
                           FileRegistryOptions options)
    : config_dir_(std::move(config_dir)),
      options_(options),
      errors_gauge_(metrics.GetGauge(
          "weft_config_errors",
          "Problems in the configuration directory now (invalid files, documents, objects)")),
      reloads_ok_(metrics.GetCounter("weft_config_reloads_total",
                                     "Reads of the configuration directory, by result", {{"result", "ok"}})),
      reloads_error_(metrics.GetCounter("weft_config_reloads_total",
                                        "Reads of the configuration directory, by result",
                                        {{"result", "error"}})) {}

FileRegistry::~FileRegistry() { Stop(); }

absl::Status FileRegistry::Run(SnapshotCallback on_snapshot) {
  if (started_) return absl::FailedPreconditionError("FileRegistry::Run called twice");
  started_ = true;

  struct stat st;
  if (stat(config_dir_.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("config directory \"", config_dir_, "\" does not exist"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("config directory \"", config_dir_, "\": ", ErrnoText(err)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("config directory \"", config_dir_, "\" is not a directory"));
  }
  std::error_code ec;
  fs::directory_iterator probe(config_dir_, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("config directory \"", config_dir_, "\" cannot be read: ", ec.message()));
  }

  // Watch before the first read, so that no change in between goes unseen.
  absl::Status watching = StartWatching();
  if (!watching.ok()) {
    CloseFds();
    return watching;
  }
  on_snapshot_ = std::move(on_snapshot);
  Reload();
  thread_ = std::thread([this] { WatchLoop(); });
  return absl::OkStatus();
}

void FileRegistry::Stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    if (std::this_thread::get_id() == thread_.get_id()) return;  // from the callback: see header
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) {
      WEFT_LOG(ERROR) << "cannot wake the config watcher: " << ErrnoText(errno);
    }
    thread_.join();
  }
  CloseFds();
}

MeshSnapshotConstSharedPtr FileRegistry::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void FileRegistry::CloseFds() {
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

absl::Status FileRegistry::StartWatching() {
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot watch config directory \"", config_dir_, "\": inotify: ", ErrnoText(errno)));
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot watch config directory \"", config_dir_, "\": eventfd: ", ErrnoText(errno)));
  }
  int wd = inotify_add_watch(inotify_fd_, config_dir_.c_str(), kWatchMask);
  if (wd < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot watch config directory \"", config_dir_, "\": ", ErrnoText(errno)));
  }
  watches_[wd] = config_dir_;
  AddWatches(config_dir_);
  return absl::OkStatus();
}

// Watches every non-hidden directory below `dir` (and `dir` itself).
// Directories that appear later are added as their creation is seen.
void FileRegistry::AddWatches(const std::string& dir) {
  int wd = inotify_add_watch(inotify_fd_, dir.c_str(), kWatchMask);
  if (wd < 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      WEFT_LOG(WARNING) << "cannot watch \"" << dir << "\": " << ErrnoText(errno)
                        << "; its changes are seen only with other changes";
    }
    return;
  }
  watches_[wd] = dir;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (IsHidden(name) || !it->is_directory(type_ec) || it->is_symlink(type_ec)) continue;
    AddWatches(Join(dir, name));
  }
}

// Forgets the watches of `dir` and everything below it (it was moved away).
void FileRegistry::RemoveWatches(const std::string& dir) {
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (it->second != config_dir_ && IsUnder(it->second, dir)) {
      inotify_rm_watch(inotify_fd_, it->first);
      it = watches_.erase(it);
    } else {
      ++it;
    }
  }
}

bool FileRegistry::DrainEvents() {
  bool any = false;
  alignas(struct inotify_event) char buf[16 * 1024];
  while (true) {
    ssize_t n = read(inotify_fd_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        WEFT_LOG(ERROR) << "inotify read: " << ErrnoText(errno);
      }
      return any;
    }
    if (n == 0) return any;
    for (char* p = buf; p < buf + n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + event->len;
      any = true;
      if (event->mask & IN_Q_OVERFLOW) {
        // Events were lost: make sure every directory is watched; the
        // re-read that follows sees every file.
        AddWatches(config_dir_);
        continue;
      }
      if (event->mask & IN_IGNORED) {
        auto it = watches_.find(event->wd);
        if (it != watches_.end() && it->second == config_dir_) {
          WEFT_LOG(WARNING) << "config directory \"" << config_dir_
                            << "\" was removed; keeping the last good configuration";
        }
        watches_.erase(event->wd);
        continue;
      }
      auto parent = watches_.find(event->wd);
      if (parent == watches_.end() || event->len == 0 || !(event->mask & IN_ISDIR)) continue;
      const std::string name = event->name;
      if (IsHidden(name)) continue;
      const std::string path = Join(parent->second, name);
      if (event->mask & (IN_CREATE | IN_MOVED_TO)) {
        AddWatches(path);
      } else if (event->mask & IN_MOVED_FROM) {
        RemoveWatches(path);
      }
    }
  }
}

void FileRegistry::WatchLoop() {
  using Clock = std::chrono::steady_clock;
  bool pending = false;
  Clock::time_point quiet_deadline, max_deadline;
  pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopping_) {
    int timeout_ms = -1;
    if (pending) {
      auto deadline = std::min(quiet_deadline, max_deadline);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      // Round up so that a wake-up never comes before the deadline.
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count() + 1));
    }
    int n = poll(fds, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      WEFT_LOG(ERROR) << "config watcher stopped: poll: " << ErrnoText(errno);
      return;
    }
    if (stopping_ || (fds[1].revents & POLLIN)) return;
    const auto now = Clock::now();
    if ((fds[0].revents & POLLIN) && DrainEvents()) {
      if (!pending) max_deadline = now + options_.max_delay;
      pending = true;
      quiet_deadline = now + options_.quiet_period;
    }
    if (pending && Clock::now() >= std::min(quiet_deadline, max_deadline)) {
      pending = false;
      Reload();
    }
  }
}

FileRegistry::ScanResult FileRegistry::Scan() const {
  ScanResult out;
  // Depth-first, skipping hidden entries; directory symlinks are not
  // followed (no cycles), file symlinks are (Kubernetes ConfigMap mounts).
  std::vector<std::string> dirs = {config_dir_};
  while (!dirs.empty()) {
    std::string dir = std::move(dirs.back());
    dirs.pop_back();
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (IsHidden(name)) continue;
      const std::string path = Join(dir, name);
      std::error_code type_ec;
      if (it->is_directory(type_ec) && !it->is_symlink(type_ec)) {
        dirs.push_back(path);
      } else if (IsManifestName(name) && it->is_regular_file(type_ec)) {
        out.files.push_back(path);
      }
    }
    if (ec) out.unreadable_dirs.emplace_back(dir, ec.message());
  }
  std::sort(out.files.begin(), out.files.end());
  return out;
}

void FileRegistry::Reload() {
  const auto start = std::chrono::steady_clock::now();
  ScanResult scan = Scan();
  auto snapshot = std::make_shared<MeshSnapshot>();
  std::map<std::string, ObjectsPtr> next_objects;
  std::map<std::string, SourceRef> first_source;  // MeshObjectKey -> where it was defined first

  auto add_objects = [&](const std::vector<MeshObject>& objects) {
    for (const MeshObject& object : objects) {
      const std::string key = MeshObjectKey(object);
      const ObjectMeta& meta = MetaOf(object);
      auto [first, inserted] = first_source.emplace(key, meta.source);
      if (!inserted) {
        ConfigError e;
        e.source = meta.source;
        e.kind = KindOf(object);
        e.namespace_ = meta.namespace_;
        e.name = meta.name;
        e.field = "metadata.name";
        e.reason = absl::StrCat("duplicate: already defined in ", first->second.ToString());
        snapshot->errors.push_back(std::move(e));
        continue;
      }
      AddToSnapshot(object, *snapshot);
    }
  };

  // Files below a directory that cannot be listed now keep their state.
  for (const auto& [dir, reason] : scan.unreadable_dirs) {
    snapshot->errors.push_back(FileError(dir, absl::StrCat("cannot read directory: ", reason)));
    for (const auto& [file, objects] : file_objects_) {
      if (IsUnder(file, dir)) next_objects[file] = objects;
    }
  }
  for (const std::string& file : scan.files) {
    if (next_objects.count(file) > 0) continue;
    auto previous_it = file_objects_.find(file);
    const ObjectsPtr previous = previous_it == file_objects_.end() ? nullptr : previous_it->second;
    struct stat st {};
    const bool stat_ok = stat(file.c_str(), &st) == 0;
    auto cached = parse_cache_.find(file);
    std::shared_ptr<const ParsedManifest> parsed;
    // File times have a coarse granularity (a kernel tick): a file written
    // in the last two seconds may have changed again within the same tick
    // and size, so it is always read again.
    const int64_t mtime_s = static_cast<int64_t>(st.st_mtim.tv_sec);
    const bool settled = stat_ok && std::time(nullptr) - mtime_s > 2;
    if (settled && cached != parse_cache_.end() && cached->second.inode == st.st_ino &&
        cached->second.size == st.st_size &&
        cached->second.mtime_ns == static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec) {
      parsed = cached->second.parsed;  // unchanged since it was last parsed
    } else {
      std::string text;
      absl::Status read = ReadFile(file, options_.max_file_bytes, text);
      if (!read.ok()) {
        parse_cache_.erase(file);
        snapshot->errors.push_back(FileError(file, std::string(read.message())));
        if (previous != nullptr) next_objects[file] = previous;
        continue;
      }
      parsed = std::make_shared<const ParsedManifest>(ParseManifest(text, file));
      if (stat_ok) {
        CachedParse& entry = parse_cache_[file];
        entry.inode = st.st_ino;
        entry.size = st.st_size;
        entry.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        entry.parsed = parsed;
      }
    }
    snapshot->errors.insert(snapshot->errors.end(), parsed->errors.begin(), parsed->errors.end());
    if (parsed->syntax_error) {
      if (previous != nullptr) next_objects[file] = previous;
    } else if (previous == nullptr || parsed->invalid_keys.empty()) {
      next_objects[file] = ObjectsPtr(parsed, &parsed->objects);  // shares the parse
    } else {
      next_objects[file] = std::make_shared<const std::vector<MeshObject>>(WithLastGood(*parsed, previous.get()));
    }
  }
  for (auto it = parse_cache_.begin(); it != parse_cache_.end();) {
    it = std::binary_search(scan.files.begin(), scan.files.end(), it->first) ? std::next(it)
                                                                            : parse_cache_.erase(it);
  }
  // Objects in sorted file order: the first definition of an object wins.
  for (const auto& [file, objects] : next_objects) add_objects(*objects);
  file_objects_ = std::move(next_objects);

  const size_t error_count = snapshot->errors.size();
  errors_gauge_.Set(static_cast<double>(error_count));
  (error_count == 0 ? reloads_ok_ : reloads_error_).Inc();

  MeshSnapshotConstSharedPtr previous = Current();
  if (previous != nullptr && SameContent(*previous, *snapshot)) return;
  snapshot->version = previous == nullptr ? 1 : previous->version + 1;

  // Each error is logged once: when it first appears.
  std::set<std::string> known;
  if (previous != nullptr) {
    for (const ConfigError& e : previous->errors) known.insert(e.ToString());
  }
  for (const ConfigError& e : snapshot->errors) {
    std::string text = e.ToString();
    if (known.insert(text).second) {
      WEFT_LOG(WARNING) << "config error: " << text;
    }
  }
  WEFT_LOG(INFO) << "config \"" << config_dir_ << "\" version " << snapshot->version << ": "
                 << Summary(*snapshot) << " (read in "
                 << std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
                            .count() /
                        1000.0
                 << " ms)";

  MeshSnapshotConstSharedPtr published = std::move(snapshot);
  {
    absl::MutexLock lock(&mu_);
    current_ = published;
  }
  if (!stopping_ && on_snapshot_) on_snapshot_(published);
}

}  // namespace weft::discovery
