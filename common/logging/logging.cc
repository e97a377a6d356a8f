#include "logging/logging.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace quantd::logging {
namespace {

absl::Mutex g_mu;
Options g_options ABSL_GUARDED_BY(g_mu);
JobLineSink g_job_sink ABSL_GUARDED_BY(g_mu);
std::string g_prefix ABSL_GUARDED_BY(g_mu);
thread_local bool t_in_sink = false;  // A line logged by the sink is not fed back to it.

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void Configure(const Options& options) {
  absl::MutexLock lock(&g_mu);
  g_options = options;
}

std::optional<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warning" || name == "warn") return Level::kWarning;
  if (name == "error") return Level::kError;
  return std::nullopt;
}

std::optional<Format> ParseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

std::string FormatLine(Level level, std::string_view message, const Fields& fields, Format format,
                       std::string_view component, long long unix_micros) {
  absl::Time time = absl::FromUnixMicros(unix_micros);
  std::string timestamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
  if (format == Format::kJson) {
    nlohmann::json line = {{"time", timestamp},
                           {"level", LevelName(level)},
                           {"component", std::string(component)},
                           {"message", std::string(message)}};
    if (!fields.job_id.empty()) line["job_id"] = fields.job_id;
    if (!fields.worker_id.empty()) line["worker_id"] = fields.worker_id;
    // Replace invalid UTF-8 rather than throw: a log line must never take the process down.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = absl::StrCat(timestamp, " ", LevelName(level), " ", std::string(component));
  if (!fields.job_id.empty()) absl::StrAppend(&out, " job=", fields.job_id);
  if (!fields.worker_id.empty()) absl::StrAppend(&out, " worker=", fields.worker_id);
  out.append(": ").append(message);
  return out;
}

void SetMessagePrefix(std::string prefix) {
  absl::MutexLock lock(&g_mu);
  g_prefix = std::move(prefix);
}

void SetJobLineSink(JobLineSink sink) {
  absl::MutexLock lock(&g_mu);
  g_job_sink = std::move(sink);
}

void Log(Level level, std::string_view message, const Fields& fields) {
  JobLineSink sink;
  {
    absl::MutexLock lock(&g_mu);
    if (level < g_options.min_level) return;
    std::string line =
        FormatLine(level, g_prefix.empty() ? std::string(message) : g_prefix + std::string(message),
                   fields, g_options.format, g_options.component, absl::ToUnixMicros(absl::Now()));
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
    if (fields.job_id.empty() || level < Level::kInfo || t_in_sink || !g_job_sink) return;
    sink = g_job_sink;
  }
  t_in_sink = true;
  sink(level, fields.job_id, std::string(message));
  t_in_sink = false;
}

}  // namespace quantd::logging
