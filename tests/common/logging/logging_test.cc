// Log lines as operators and log collectors read them: text on a terminal, JSON lines otherwise.
#include "logging/logging.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace quantd::logging {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr long long kNoonMicros = 1764072000123456;  // 2025-11-25T12:00:00.123456Z

TEST(LoggingFormatTest, TextLineCarriesTimeLevelComponentIdsAndMessage) {
  EXPECT_EQ(FormatLine(Level::kWarning, "lease expired", {.job_id = "j-1", .worker_id = "w-2"},
                       Format::kText, "quantd", kNoonMicros),
            "2025-11-25T12:00:00.123456Z warning quantd job=j-1 worker=w-2: lease expired");
  EXPECT_EQ(FormatLine(Level::kInfo, "listening", {}, Format::kText, "quantd-worker", kNoonMicros),
            "2025-11-25T12:00:00.123456Z info quantd-worker: listening");
}

TEST(LoggingFormatTest, JsonLineHasEveryFieldAndEscapesTheMessage) {
  std::string line =
      FormatLine(Level::kError, "bad \"path\"\nnext line", {.job_id = "j-1", .worker_id = "w-2"},
                 Format::kJson, "quantd-worker", kNoonMicros);
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one line per record
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["time"], "2025-11-25T12:00:00.123456Z");
  EXPECT_EQ(parsed["level"], "error");
  EXPECT_EQ(parsed["component"], "quantd-worker");
  EXPECT_EQ(parsed["job_id"], "j-1");
  EXPECT_EQ(parsed["worker_id"], "w-2");
  EXPECT_EQ(parsed["message"], "bad \"path\"\nnext line");
}

TEST(LoggingFormatTest, JsonLineOmitsEmptyIdsAndSurvivesInvalidUtf8) {
  std::string line =
      FormatLine(Level::kDebug, "bytes \xff\xfe end", {}, Format::kJson, "quantd", kNoonMicros);
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_FALSE(parsed.contains("job_id"));
  EXPECT_FALSE(parsed.contains("worker_id"));
  EXPECT_EQ(parsed["level"], "debug");
  EXPECT_THAT(parsed["message"].get<std::string>(), HasSubstr(" end"));
}

TEST(LoggingFlagsTest, ParsesLevelsAndFormats) {
  EXPECT_EQ(ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(ParseLevel("info"), Level::kInfo);
  EXPECT_EQ(ParseLevel("warn"), Level::kWarning);
  EXPECT_EQ(ParseLevel("warning"), Level::kWarning);
  EXPECT_EQ(ParseLevel("error"), Level::kError);
  EXPECT_EQ(ParseLevel("verbose"), std::nullopt);
  EXPECT_EQ(ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseFormat("text"), Format::kText);
  EXPECT_EQ(ParseFormat("yaml"), std::nullopt);
}

TEST(LoggingTest, WritesConfiguredFormatToStderrAboveTheMinimumLevel) {
  Configure({.min_level = Level::kWarning, .format = Format::kJson, .component = "quantd"});
  ::testing::internal::CaptureStderr();
  Info("hidden");
  Warning("shown", {.job_id = "j-9", .worker_id = ""});
  std::string written = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(written, Not(HasSubstr("hidden")));
  ASSERT_EQ(written.back(), '\n');
  nlohmann::json parsed = nlohmann::json::parse(written);
  EXPECT_EQ(parsed["message"], "shown");
  EXPECT_EQ(parsed["job_id"], "j-9");
  EXPECT_EQ(parsed["component"], "quantd");

  Configure({.min_level = Level::kDebug, .format = Format::kText, .component = "quantd-worker"});
  ::testing::internal::CaptureStderr();
  Debug("now visible");
  written = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(written, HasSubstr(" debug quantd-worker: now visible\n"));
}

TEST(LoggingTest, JobLinesAtInfoAndAboveReachTheJobSinkOnce) {
  Configure({.min_level = Level::kDebug, .format = Format::kText, .component = "quantd-worker"});
  std::vector<std::string> forwarded;
  SetJobLineSink([&](Level level, const std::string& job_id, const std::string& message) {
    forwarded.push_back(absl::StrCat(static_cast<int>(level), " ", job_id, " ", message));
    Info("the sink logs too", {.job_id = job_id, .worker_id = ""});  // Not fed back.
  });
  ::testing::internal::CaptureStderr();
  Info("starting attempt 1", {.job_id = "j-1", .worker_id = "w"});
  Warning("engine ignored SIGTERM", {.job_id = "j-1", .worker_id = ""});
  Debug("engine: stderr line", {.job_id = "j-1", .worker_id = ""});  // Below info: log only.
  Info("no job here");
  std::string written = ::testing::internal::GetCapturedStderr();
  SetJobLineSink({});
  Info("after removal", {.job_id = "j-1", .worker_id = ""});
  EXPECT_EQ(forwarded,
            (std::vector<std::string>{"1 j-1 starting attempt 1", "2 j-1 engine ignored SIGTERM"}));
  EXPECT_THAT(written, HasSubstr("engine: stderr line"));  // Still written.
  EXPECT_THAT(written, HasSubstr("the sink logs too"));
}

}  // namespace
}  // namespace quantd::logging
