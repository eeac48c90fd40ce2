// Minimal leveled logging to stderr, one line per event:
//   2026-11-26T12:00:00.123Z I file_registry.cc:42] loaded 12 objects
// Used by every Weft binary; thread-safe. WEFT_LOG(INFO) << ...;
#pragma once

#include <sstream>
#include <string_view>

namespace weft::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default kInfo; WEFT_LOG_LEVEL=debug
// in the environment lowers it.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Turns a finished `<<` chain into void, so that WEFT_LOG can be one
// conditional expression: `&` binds looser than `<<` and tighter than `?:`.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace weft::common

#define WEFT_LOG_LEVEL_DEBUG ::weft::common::LogLevel::kDebug
#define WEFT_LOG_LEVEL_INFO ::weft::common::LogLevel::kInfo
#define WEFT_LOG_LEVEL_WARNING ::weft::common::LogLevel::kWarning
#define WEFT_LOG_LEVEL_ERROR ::weft::common::LogLevel::kError

// One expression, not an if/else: `if (x) WEFT_LOG(ERROR) << ...;` has no
// dangling else, and nothing is formatted below the level.
#define WEFT_LOG(level)                                    \
  (WEFT_LOG_LEVEL_##level < ::weft::common::MinLogLevel()) \
      ? (void)0                                            \
      : ::weft::common::LogVoidify() &                     \
            ::weft::common::LogMessage(WEFT_LOG_LEVEL_##level, __FILE__, __LINE__).stream()
