#include "discovery/file_registry.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
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

// The manifest files below a directory, and the directories that could not
// be listed (whose files keep their last good state).
struct FileRegistry::ScanResult {
  std::vector<std::string> files;                                    // sorted
  std::vector<std::pair<std::string, std::string>> unreadable_dirs;  // dir, reason
  // Manifest-named symlinks, whatever they point to (a dangling one can come
  // back with no event naming it).
  std::vector<std::string> symlinks;
};

struct FileRegistry::Delta {
  // The MeshObjectKeys whose definitions changed, each with an object of that
  // key (before or after the change) that names its kind, namespace and name.
  std::map<std::string, const MeshObject*> keys;
  // The object lists replaced during the reload, alive while `keys` points
  // into them.
  std::vector<ObjectsPtr> retired;
  // Files read in this reload: a file named by an event and found by a
  // directory rescan is read once.
  std::set<std::string> read;
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
      if (unwatched_dirs_.insert(dir).second) {
        WEFT_LOG(WARNING) << "cannot watch \"" << dir << "\": " << ErrnoText(errno)
                          << "; its changes are seen only with other changes";
      }
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
        // Events were lost: make sure every directory is watched and read
        // everything again.
        AddWatches(config_dir_);
        rescan_all_ = true;
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
      if (parent == watches_.end()) continue;
      if (event->len == 0) {
        // About a watched directory itself. A subdirectory's parent reports
        // the same change by name; the top directory has no watched parent.
        if (parent->second == config_dir_) rescan_all_ = true;
        continue;
      }
      const std::string name = event->name;
      // Hidden entries are not read; a ConfigMap's `..data` swap changes
      // the targets of symlinked files, which every reload checks.
      if (IsHidden(name)) continue;
      const std::string path = Join(parent->second, name);
      if (event->mask & IN_ISDIR) {
        if (event->mask & (IN_CREATE | IN_MOVED_TO | IN_ATTRIB)) {
          AddWatches(path);
        } else if (event->mask & IN_MOVED_FROM) {
          RemoveWatches(path);
        }
        dirty_dirs_.insert(path);
      } else if (IsManifestName(name)) {
        dirty_files_.insert(path);
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

FileRegistry::ScanResult FileRegistry::Scan(const std::string& top) const {
  ScanResult out;
  // Depth-first, skipping hidden entries; directory symlinks are not
  // followed (no cycles), file symlinks are (Kubernetes ConfigMap mounts).
  std::vector<std::string> dirs = {top};
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
      } else if (IsManifestName(name)) {
        if (it->is_regular_file(type_ec)) out.files.push_back(path);
        if (it->is_symlink(type_ec)) out.symlinks.push_back(path);
      }
    }
    if (ec) out.unreadable_dirs.emplace_back(dir, ec.message());
  }
  std::sort(out.files.begin(), out.files.end());
  std::sort(out.unreadable_dirs.begin(), out.unreadable_dirs.end());
  return out;
}

bool FileRegistry::UnderUnreadableDir(const std::string& path) const {
  for (const auto& [dir, reason] : unreadable_dirs_) {
    if (IsUnder(path, dir)) return true;
  }
  return false;
}

void FileRegistry::SetObjects(const std::string& file, FileState& state, ObjectsPtr objects, Delta& delta) {
  std::vector<std::string> keys;
  if (objects != nullptr) {
    keys.reserve(objects->size());
    for (const MeshObject& o : *objects) keys.push_back(MeshObjectKey(o));
  }
  if (state.objects != nullptr) {
    for (size_t i = 0; i < state.keys.size(); ++i) {
      delta.keys.emplace(state.keys[i], &(*state.objects)[i]);
      if (std::find(keys.begin(), keys.end(), state.keys[i]) != keys.end()) continue;
      auto it = definers_.find(state.keys[i]);
      if (it == definers_.end()) continue;
      it->second.erase(file);
      if (it->second.empty()) definers_.erase(it);
    }
    delta.retired.push_back(state.objects);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    delta.keys.emplace(keys[i], &(*objects)[i]);
    definers_[keys[i]].insert(file);
  }
  state.objects = std::move(objects);
  state.keys = std::move(keys);
}

void FileRegistry::ForgetFile(const std::string& file, Delta& delta) {
  auto it = files_.find(file);
  if (it == files_.end()) return;
  SetObjects(file, it->second, nullptr, delta);
  files_.erase(it);
}

void FileRegistry::RefreshFile(const std::string& file, bool force, Delta& delta) {
  if (force && delta.read.count(file) > 0) return;
  FileState& state = files_[file];
  struct stat st {};
  const bool stat_ok = stat(file.c_str(), &st) == 0;
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  // File times have a coarse granularity (a kernel tick): a file written
  // in the last two seconds may have changed again within the same tick
  // and size, so it is always read again.
  const bool settled = stat_ok && std::time(nullptr) - static_cast<int64_t>(st.st_mtim.tv_sec) > 2;
  const CachedParse& cached = state.cache;
  if (!force && settled && cached.parsed != nullptr && cached.inode == st.st_ino &&
      cached.size == st.st_size && cached.mtime_ns == mtime_ns) {
    return;  // unchanged since it was last parsed
  }
  delta.read.insert(file);
  std::string text;
  absl::Status read = ReadFile(file, options_.max_file_bytes, text);
  if (!read.ok()) {
    state.cache = {};
    state.errors = {FileError(file, std::string(read.message()))};
    return;  // its objects stay
  }
  auto parsed = std::make_shared<const ParsedManifest>(ParseManifest(text, file));
  state.cache = {};
  if (stat_ok)
    state.cache = {static_cast<uint64_t>(st.st_ino), static_cast<int64_t>(st.st_size), mtime_ns, parsed};
  state.errors = parsed->errors;
  if (parsed->syntax_error) return;  // its objects stay
  if (state.objects == nullptr || parsed->invalid_keys.empty()) {
    SetObjects(file, state, ObjectsPtr(parsed, &parsed->objects), delta);  // shares the parse
  } else {
    SetObjects(file, state,
               std::make_shared<const std::vector<MeshObject>>(WithLastGood(*parsed, state.objects.get())),
               delta);
  }
}

void FileRegistry::RescanDir(const std::string& dir, Delta& delta) {
  // The top directory is followed if it is a symlink, and when it cannot be
  // listed (even when it is gone) every file keeps its state; a
  // subdirectory that is gone, or is now a symlink, takes its files along.
  struct stat st {};
  const bool listable = dir == config_dir_ || (lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
                                               !IsHidden(fs::path(dir).filename().string()));
  ScanResult scan;
  if (listable) scan = Scan(dir);
  for (auto it = unreadable_dirs_.begin(); it != unreadable_dirs_.end();) {
    it = IsUnder(it->first, dir) ? unreadable_dirs_.erase(it) : std::next(it);
  }
  unreadable_dirs_.insert(scan.unreadable_dirs.begin(), scan.unreadable_dirs.end());
  const std::string prefix = Join(dir, "");
  for (auto it = symlinks_.lower_bound(prefix); it != symlinks_.end() && absl::StartsWith(*it, prefix);) {
    it = UnderUnreadableDir(*it) ? std::next(it) : symlinks_.erase(it);
  }
  symlinks_.insert(scan.symlinks.begin(), scan.symlinks.end());

  std::vector<std::string> gone;
  for (auto it = files_.lower_bound(prefix); it != files_.end() && absl::StartsWith(it->first, prefix);
       ++it) {
    if (UnderUnreadableDir(it->first)) {
      // Kept as it was last read; the directory's error replaces its own.
      it->second.errors.clear();
      it->second.cache = {};
    } else if (!std::binary_search(scan.files.begin(), scan.files.end(), it->first)) {
      gone.push_back(it->first);
    }
  }
  for (const std::string& file : gone) ForgetFile(file, delta);
  for (const std::string& file : scan.files) RefreshFile(file, /*force=*/false, delta);
}

const MeshObject* FileRegistry::Definition(const std::string& key) const {
  auto it = definers_.find(key);
  if (it == definers_.end()) return nullptr;
  const FileState& state = files_.at(*it->second.begin());
  const size_t index = std::find(state.keys.begin(), state.keys.end(), key) - state.keys.begin();
  return &(*state.objects)[index];
}

std::shared_ptr<MeshSnapshot> FileRegistry::BuildSnapshot(const MeshSnapshot& base, const Delta& delta) {
  // The object each changed key resolves to now: the first definition in
  // file order (null: none left).
  std::vector<std::pair<const MeshObject*, const MeshObject*>> updates;  // (key's sample, definition)
  for (const auto& [key, sample] : delta.keys) {
    const MeshObject* definition = Definition(key);
    const bool same =
        definition == nullptr ? !SnapshotContains(base, *sample) : SnapshotHolds(base, *definition);
    if (!same) updates.emplace_back(sample, definition);
  }

  // Errors: directories that cannot be listed, then each file's (in file
  // order), then the duplicates (in file, then document order).
  std::vector<ConfigError> errors;
  for (const auto& [dir, reason] : unreadable_dirs_) {
    errors.push_back(FileError(dir, absl::StrCat("cannot read directory: ", reason)));
  }
  for (const auto& [file, state] : files_)
    errors.insert(errors.end(), state.errors.begin(), state.errors.end());
  std::set<std::string> duplicating_files;
  for (const std::string& key : duplicated_) {
    const auto& files = definers_.at(key);
    duplicating_files.insert(files.begin(), files.end());
  }
  for (const std::string& file : duplicating_files) {
    const FileState& state = files_.at(file);
    for (size_t i = 0; i < state.keys.size(); ++i) {
      if (duplicated_.count(state.keys[i]) == 0) continue;
      const MeshObject* first = Definition(state.keys[i]);
      if (first == &(*state.objects)[i]) continue;
      const MeshObject& object = (*state.objects)[i];
      const ObjectMeta& meta = MetaOf(object);
      ConfigError e;
      e.source = meta.source;
      e.kind = KindOf(object);
      e.namespace_ = meta.namespace_;
      e.name = meta.name;
      e.field = "metadata.name";
      e.reason = absl::StrCat("duplicate: already defined in ", MetaOf(*first).source.ToString());
      errors.push_back(std::move(e));
    }
  }
  bool same_errors = errors.size() == base.errors.size();
  for (size_t i = 0; same_errors && i < errors.size(); ++i)
    same_errors = SameObject(errors[i], base.errors[i]);
  if (updates.empty() && same_errors) return nullptr;

  std::shared_ptr<MeshSnapshot> snapshot = spare_ != nullptr
                                               ? std::shared_ptr<MeshSnapshot>(std::move(spare_))
                                               : std::make_shared<MeshSnapshot>(base);
  for (const auto& [sample, definition] : updates) {
    if (definition != nullptr) {
      AddToSnapshot(*definition, *snapshot);
    } else {
      const ObjectMeta& meta = MetaOf(*sample);
      RemoveFromSnapshot(KindOf(*sample), meta.namespace_, meta.name, *snapshot);
    }
  }
  snapshot->errors = std::move(errors);
  return snapshot;
}

void FileRegistry::Reload() {
  const auto start = std::chrono::steady_clock::now();
  Delta delta;
  std::set<std::string> dirs = std::move(dirty_dirs_);
  std::set<std::string> files = std::move(dirty_files_);
  dirty_dirs_.clear();
  dirty_files_.clear();
  if (rescan_all_) {
    rescan_all_ = false;
    dirs = {config_dir_};
    files.clear();
  }
  // Directories that could not be watched are read every time.
  std::set<std::string> unwatched = std::move(unwatched_dirs_);
  unwatched_dirs_.clear();
  for (const std::string& dir : unwatched) {
    AddWatches(dir);
    dirs.insert(dir);
  }
  std::string covered;  // the last directory rescanned: those below it are included
  for (const std::string& dir : dirs) {
    if (!covered.empty() && IsUnder(dir, covered)) continue;
    RescanDir(dir, delta);
    covered = dir;
  }
  // What a rescan would list: a regular file (or a symlink to one) in a
  // directory that is not a symlink (the top one may be).
  auto listed = [&](const std::string& file) {
    const fs::path parent = fs::path(file).parent_path();
    struct stat st {};
    std::error_code ec;
    return fs::is_regular_file(file, ec) &&
           (parent == fs::path(config_dir_) || (lstat(parent.c_str(), &st) == 0 && S_ISDIR(st.st_mode)));
  };
  for (const std::string& file : files) {
    if (UnderUnreadableDir(file)) continue;
    struct stat lst {};
    if (lstat(file.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      symlinks_.insert(file);
    } else {
      symlinks_.erase(file);
    }
    if (listed(file)) {
      RefreshFile(file, /*force=*/true, delta);
    } else {
      ForgetFile(file, delta);
    }
  }
  // A symlink's target can change, or go, without an event naming the link
  // (a ConfigMap volume swaps its hidden `..data` directory).
  const std::vector<std::string> symlinks(symlinks_.begin(), symlinks_.end());
  for (const std::string& file : symlinks) {
    if (delta.read.count(file) > 0 || UnderUnreadableDir(file)) continue;
    struct stat lst {};
    if (lstat(file.c_str(), &lst) != 0 || !S_ISLNK(lst.st_mode)) symlinks_.erase(file);
    if (listed(file)) {
      RefreshFile(file, /*force=*/false, delta);
    } else {
      ForgetFile(file, delta);
    }
  }
  for (const auto& [key, sample] : delta.keys) {
    size_t count = 0;
    if (auto it = definers_.find(key); it != definers_.end()) {
      for (const std::string& file : it->second) {
        const auto& keys = files_.at(file).keys;
        count += std::count(keys.begin(), keys.end(), key);
      }
    }
    if (count > 1) {
      duplicated_.insert(key);
    } else {
      duplicated_.erase(key);
    }
  }

  MeshSnapshotConstSharedPtr previous = built_;
  std::shared_ptr<MeshSnapshot> snapshot =
      BuildSnapshot(previous == nullptr ? MeshSnapshot{} : *previous, delta);
  if (snapshot == nullptr && previous == nullptr)
    snapshot = std::make_shared<MeshSnapshot>();  // the first one
  const size_t error_count = snapshot != nullptr ? snapshot->errors.size() : previous->errors.size();
  errors_gauge_.Set(static_cast<double>(error_count));
  (error_count == 0 ? reloads_ok_ : reloads_error_).Inc();
  if (snapshot == nullptr) return;  // nothing changed
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
                 << std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                          start)
                            .count() /
                        1000.0
                 << " ms)";

  MeshSnapshotConstSharedPtr published = std::move(snapshot);
  built_ = published;
  {
    absl::MutexLock lock(&mu_);
    current_ = published;
  }
  if (!stopping_ && on_snapshot_) on_snapshot_(published);
  if (!stopping_) spare_ = std::make_unique<MeshSnapshot>(*published);
}

}  // namespace weft::discovery
