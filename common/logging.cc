#include "common/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace weft::common {
namespace {

LogLevel InitialLevel() {
  const char* env = std::getenv("WEFT_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  std::string v(env);
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warning") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(InitialLevel())};
  return level;
}

const char* Basename(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

void SetMinLogLevel(LogLevel level) { Level() = static_cast<int>(level); }
LogLevel MinLogLevel() { return static_cast<LogLevel>(Level().load()); }

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  static const char kLetters[] = {'D', 'I', 'W', 'E'};
  char prefix[96];
  std::snprintf(prefix, sizeof(prefix), "%s.%03dZ %c %s:%d] ", buf, millis,
                kLetters[static_cast<int>(level)], Basename(file), line);
  stream_ << prefix;
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  std::string line = stream_.str();
  // One write per line keeps lines from interleaving between threads.
  std::fwrite(line.data(), 1, line.size(), stderr);
  (void)level_;
}

}  // namespace weft::common
