// A real Prometheus (Debian's /usr/bin/prometheus) on loopback scrapes a server-role and a
// worker-role process serving quantd's metrics, loads deploy/'s alert rules, and answers PromQL
// through its HTTP API with the values the processes produced. Bounded: gives up after 60 s.
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/child_process.h"

namespace quantd::testing {
namespace {

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kFixture[] = QUANTD_BINARY_DIR "/tests/quantd-metrics-fixture";
constexpr char kAlertRules[] = QUANTD_SOURCE_DIR "/deploy/base/monitoring/alerts.yml";
constexpr auto kDeadline = std::chrono::seconds(60);

// Waits for a file a child writes when it is listening; returns its first number.
std::optional<int> WaitForPortFile(const std::string& path, ChildProcess& child) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up && child.Running()) {
    int port = 0;
    if (std::ifstream(path) >> port) return port;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  // Starts one fixture process; returns its metrics port.
  int StartFixture(const std::string& role) {
    std::string port_file = absl::StrCat(dir_.path(), "/", role, ".port");
    auto child = ChildProcess::Start(
        {kFixture, "--role=" + role, "--address=127.0.0.1:0", "--port_file=" + port_file},
        absl::StrCat(dir_.path(), "/", role, ".log"));
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return 0;
    children_.push_back(*std::move(child));
    std::optional<int> port = WaitForPortFile(port_file, children_.back());
    EXPECT_TRUE(port.has_value()) << role << " fixture did not start:\n"
                                  << children_.back().ReadLog();
    return port.value_or(0);
  }

  // Starts Prometheus scraping the two targets every second; returns its port.
  int StartPrometheus(int server_port, int worker_port) {
    std::string config = absl::StrCat(dir_.path(), "/prometheus.yml");
    // Same job names as deploy/prometheus/prometheus.yml, so the dashboards' queries apply.
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "rule_files: ['"
                          << kAlertRules
                          << "']\n"
                             "scrape_configs:\n"
                             "  - job_name: quantd\n"
                             "    static_configs: [{targets: ['127.0.0.1:"
                          << server_port
                          << "']}]\n"
                             "  - job_name: quantd-worker\n"
                             "    static_configs: [{targets: ['127.0.0.1:"
                          << worker_port << "']}]\n";
    absl::StatusOr<int> port = PickFreeLoopbackPort();
    EXPECT_TRUE(port.ok());
    auto child = ChildProcess::Start(
        {kPrometheus, "--config.file=" + config,
         absl::StrCat("--storage.tsdb.path=", dir_.path(), "/tsdb"),
         absl::StrCat("--web.listen-address=127.0.0.1:", *port), "--log.level=warn"},
        absl::StrCat(dir_.path(), "/prometheus.log"));
    EXPECT_TRUE(child.ok()) << child.status();
    if (child.ok()) children_.push_back(*std::move(child));
    return *port;
  }

  TempDir dir_;
  std::vector<ChildProcess> children_;  // stopped (SIGTERM) by their destructors
};

// The single value of an instant query, or nullopt with `why` filled in.
std::optional<double> QueryScalar(httplib::Client& client, const std::string& promql,
                                  std::string* why) {
  auto response = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, {});
  if (!response) {
    *why = "no response: " + httplib::to_string(response.error());
    return std::nullopt;
  }
  nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
  if (body.is_discarded() || body.value("status", "") != "success") {
    *why = response->body;
    return std::nullopt;
  }
  const nlohmann::json& result = body["data"]["result"];
  if (result.size() != 1) {
    *why = absl::StrCat(result.size(), " series: ", result.dump());
    return std::nullopt;
  }
  return std::stod(result[0]["value"][1].get<std::string>());
}

TEST_F(PrometheusScrapeTest, PromQlSeesWhatTheProcessesExport) {
  ASSERT_TRUE(std::filesystem::exists(kPrometheus)) << "install Debian's prometheus package";
  ASSERT_FALSE(dir_.path().empty());
  int server_port = StartFixture("server");
  int worker_port = StartFixture("worker");
  ASSERT_GT(server_port, 0);
  ASSERT_GT(worker_port, 0);
  int prometheus_port = StartPrometheus(server_port, worker_port);
  httplib::Client client("127.0.0.1", prometheus_port);
  client.set_connection_timeout(1);
  client.set_read_timeout(5);

  // Each query and the value the fixtures' scripted activity must end at.
  const std::vector<std::pair<std::string, double>> expectations = {
      {R"(up{job="quantd"})", 1},
      {R"(up{job="quantd-worker"})", 1},
      {R"(quantd_jobs_submitted_total{job="quantd"})", 10},
      {R"(quantd_jobs_finished_total{outcome="succeeded"})", 8},
      {R"(sum(quantd_jobs_finished_total{outcome=~"failed|cancelled"}))", 2},
      {R"(sum(quantd_jobs{state=~"queued|running"}))", 0},
      {R"(quantd_grpc_requests_total{method="SubmitJob",code="OK"})", 10},
      {"quantd_worker_tokens_processed_total", 8 * 4 * 4096},
      {"sum(quantd_worker_layer_duration_seconds_count)", 32},
      // 32 observations of 1.5 s, all in the (1, 2.5] bucket: the median interpolates to 1.75.
      {"histogram_quantile(0.5, sum by (le) (quantd_worker_layer_duration_seconds_bucket))", 1.75},
      {R"(quantd_worker_gpu_memory_peak_bytes{gpu="0"})", 1.75e9},
  };
  auto give_up = std::chrono::steady_clock::now() + kDeadline;
  std::string failing;
  while (std::chrono::steady_clock::now() < give_up) {
    failing.clear();
    for (const auto& [promql, expected] : expectations) {
      std::string why;
      std::optional<double> value = QueryScalar(client, promql, &why);
      if (!value || *value != expected) {
        failing = absl::StrCat(promql, " -> ", value ? std::to_string(*value) : why, " (expected ",
                               expected, ")");
        break;
      }
    }
    if (failing.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(failing, "") << "Prometheus log:\n" << children_.back().ReadLog();

  // deploy/'s alert rules loaded and evaluate without errors against these series.
  auto rules = client.Get("/api/v1/rules");
  ASSERT_TRUE(rules);
  nlohmann::json body = nlohmann::json::parse(rules->body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << rules->body;
  int rule_count = 0;
  for (const nlohmann::json& group : body["data"]["groups"]) {
    for (const nlohmann::json& rule : group["rules"]) {
      ++rule_count;
      EXPECT_EQ(rule.value("health", ""), "ok") << rule.dump();
    }
  }
  EXPECT_GT(rule_count, 0) << rules->body;
}

}  // namespace
}  // namespace quantd::testing
