// Process-wide logging for quantd and quantd-worker: human-readable lines on a terminal, or JSON
// lines (time, level, component, job_id, worker_id, message) for log collectors. Thread-safe.
#ifndef QUANTD_COMMON_LOGGING_LOGGING_H_
#define QUANTD_COMMON_LOGGING_LOGGING_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace quantd::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class Format { kText, kJson };

struct Options {
  Level min_level = Level::kInfo;
  Format format = Format::kText;
  std::string component;  // "quantd", "quantd-worker", ...
};

// Sets the process's logging options; call once at start-up (later calls replace them).
void Configure(const Options& options);

// Parses "debug" | "info" | "warning" | "error" and "text" | "json" (flag values).
std::optional<Level> ParseLevel(std::string_view name);
std::optional<Format> ParseFormat(std::string_view name);

// Context attached to a line.
struct Fields {
  std::string job_id;
  std::string worker_id;
};

// Writes one line to stderr if `level` is at least the configured minimum.
void Log(Level level, std::string_view message, const Fields& fields = {});

inline void Debug(std::string_view m, const Fields& f = {}) { Log(Level::kDebug, m, f); }
inline void Info(std::string_view m, const Fields& f = {}) { Log(Level::kInfo, m, f); }
inline void Warning(std::string_view m, const Fields& f = {}) { Log(Level::kWarning, m, f); }
inline void Error(std::string_view m, const Fields& f = {}) { Log(Level::kError, m, f); }

// Receives every line at info level or above that names a job (Fields.job_id), after it is
// written: quantd-worker forwards them to the job's event stream. Called on the logging thread
// with no lock of this module held; lines the sink itself logs are not passed to it again. Keep it
// quick and non-blocking. An empty function removes the sink.
using JobLineSink =
    std::function<void(Level level, const std::string& job_id, const std::string& message)>;
void SetJobLineSink(JobLineSink sink);

// Puts `prefix` before the message of every line from now on ("" removes it): quantd marks its
// start-up lines when it runs insecurely.
void SetMessagePrefix(std::string prefix);

// Formats one line without writing it (for tests and for a job's event stream).
std::string FormatLine(Level level, std::string_view message, const Fields& fields, Format format,
                       std::string_view component, long long unix_micros);

}  // namespace quantd::logging

#endif  // QUANTD_COMMON_LOGGING_LOGGING_H_
