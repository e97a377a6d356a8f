// quantd's flags as an operator sets them: the metrics address from the flag or the environment,
// and log settings that are checked rather than silently replaced by defaults.
#include "server_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

namespace quantd::server {
namespace {

std::optional<int> Parse(std::vector<std::string> args, ServerConfig* config) {
  args.insert(args.begin(), "quantd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseServerFlags(static_cast<int>(argv.size()), argv.data(), config);
}

TEST(ServerConfigTest, MetricsAddressDefaultsFlagAndEnvironment) {
  ServerConfig defaults;
  ASSERT_EQ(Parse({}, &defaults), std::nullopt);
  EXPECT_EQ(defaults.metrics_address, "127.0.0.1:7451");

  setenv("QUANTD_METRICS_ADDRESS", "0.0.0.0:9000", 1);
  ServerConfig from_env;
  ASSERT_EQ(Parse({}, &from_env), std::nullopt);
  EXPECT_EQ(from_env.metrics_address, "0.0.0.0:9000");
  ServerConfig from_flag;
  ASSERT_EQ(Parse({"--metrics-address=:0"}, &from_flag), std::nullopt);
  EXPECT_EQ(from_flag.metrics_address, ":0");  // The flag wins over the environment.
  unsetenv("QUANTD_METRICS_ADDRESS");
}

TEST(ServerConfigTest, LogLevelAndFormatMustBeKnownValues) {
  ServerConfig config;
  ASSERT_EQ(Parse({"--log-format=json", "--log-level=debug"}, &config), std::nullopt);
  EXPECT_EQ(config.log_format, "json");
  EXPECT_EQ(config.log_level, "debug");
  ServerConfig bad_format, bad_level;
  testing::internal::CaptureStderr();
  EXPECT_EQ(Parse({"--log-format=yaml"}, &bad_format), 2);
  EXPECT_EQ(Parse({"--log-level=loud"}, &bad_level), 2);
  const std::string errors = testing::internal::GetCapturedStderr();
  EXPECT_NE(errors.find("--log-format"), std::string::npos) << errors;
  EXPECT_NE(errors.find("--log-level"), std::string::npos) << errors;
}

}  // namespace
}  // namespace quantd::server
