// The operations view of a real run, on loopback: quantd (SQLite store in a temp dir), a separate
// quantd-worker running the real quantize-awq on the CPU, and Debian's Prometheus scraping both
// four times a second while a small job on the demo model (tiny-qwen2-wp) runs through quantctl.
//   - PromQL through Prometheus's HTTP API sees what happened (jobs, attempts, layers, tokens,
//     gRPC and store calls, a scrape during the run) and deploy/'s alert rules evaluate cleanly;
//   - `promtool check metrics` finds nothing wrong with either process's /metrics;
//   - /healthz and /readyz answer, and the worker turns not ready when quantd goes away;
//   - with --log-format=json both processes write JSON lines with time, level, component, job id,
//     worker id and message, and the worker's lines about the job are in its event stream.
// One test case: the stack and its job take about a minute, and ctest runs each case in its own
// process.
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/child_process.h"

namespace quantd::testing {
namespace {

constexpr char kBin[] = QUANTD_BINARY_DIR "/bin/";
constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kDemoModel[] = QUANTD_SOURCE_DIR "/demo/models/tiny-qwen2-wp";
constexpr char kAlertRules[] = QUANTD_SOURCE_DIR "/deploy/base/monitoring/alerts.yml";
constexpr int kLayers = 4;        // tiny-qwen2-wp's decoder layers.
constexpr int kMaxSeqLen = 128;   // Calibration block length of the job.
constexpr int kJobSeconds = 420;  // The CPU engine on a busy 2-core machine: about a minute.

using Clock = std::chrono::steady_clock;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits until `ready()` or the deadline; true when ready.
bool WaitUntil(const std::function<bool()>& ready, std::chrono::seconds limit) {
  const auto give_up = Clock::now() + limit;
  while (Clock::now() < give_up) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return ready();
}

// The port of "metrics at http://127.0.0.1:PORT/metrics" in a process's log, once it is there.
std::optional<int> MetricsPortFromLog(const std::string& log) {
  static constexpr char kPrefix[] = "metrics at http://127.0.0.1:";
  const size_t at = log.find(kPrefix);
  if (at == std::string::npos) return std::nullopt;
  return std::atoi(log.c_str() + at + sizeof(kPrefix) - 1);
}

// GET http://127.0.0.1:port/path: status and body (status 0: no answer).
std::pair<int, std::string> Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  auto response = client.Get(path);
  if (!response) return {0, ""};
  return {response->status, response->body};
}

// `promtool check metrics` on an exposition: its complaints ("" when clean).
std::string PromtoolComplaints(const std::string& exposition, const std::string& dir) {
  const std::string file = dir + "/scrape.txt";
  std::ofstream(file) << exposition;
  FILE* pipe = popen(absl::StrCat(kPromtool, " check metrics < ", file, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return "cannot run promtool";
  std::string output;
  char buffer[1024];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return status == 0 && output.empty() ? "" : absl::StrCat("status ", status, ": ", output);
}

// The processes, the job and what was seen while it ran.
struct Stack {
  TempDir dir;
  std::vector<ChildProcess> children;  // Stopped (SIGTERM) when the stack goes away.
  int grpc_port = 0, server_metrics_port = 0, worker_metrics_port = 0, prometheus_port = 0;
  std::string quantctl_output;
  int quantctl_status = -1;
  std::string server_metrics_while_running, worker_metrics_while_running;
  std::string error;  // Why the stack or the job did not come up ("" when they did).

  std::string Log(const std::string& name) const { return Slurp(dir.path() + "/" + name + ".log"); }
  ChildProcess* Start(const std::string& name, std::vector<std::string> argv) {
    auto child = ChildProcess::Start(argv, dir.path() + "/" + name + ".log");
    if (!child.ok()) {
      error = child.status().ToString();
      return nullptr;
    }
    children.push_back(*std::move(child));
    return &children.back();
  }
  void StartProcesses();
  void StartPrometheus();
  void RunJob();
};

void Stack::StartProcesses() {
  const std::string d = dir.path();
  ChildProcess* server = Start(
      "quantd", {absl::StrCat(kBin, "quantd"), "--listen=127.0.0.1:0", "--port-file=" + d + "/port",
                 "--state-dir=" + d + "/state", "--metrics-address=127.0.0.1:0",
                 absl::StrCat("--allowed-roots=", kDemoModel, ",", d), "--local-worker=false",
                 "--heartbeat-seconds=0.5", "--log-format=json"});
  if (server == nullptr) return;
  WaitUntil([&] { return (std::ifstream(d + "/port") >> grpc_port) && grpc_port > 0; },
            std::chrono::seconds(30));
  server_metrics_port = MetricsPortFromLog(Log("quantd")).value_or(0);
  if (grpc_port == 0 || server_metrics_port == 0) {
    error = "quantd did not start:\n" + Log("quantd");
    return;
  }
  ChildProcess* worker =
      Start("quantd-worker",
            {absl::StrCat(kBin, "quantd-worker"), absl::StrCat("--server=127.0.0.1:", grpc_port),
             "--worker-id=ops-worker", absl::StrCat("--engine=", kBin, "quantize-awq"), "--no-gpus",
             "--metrics-address=127.0.0.1:0", "--log-format=json"});
  if (worker == nullptr) return;
  WaitUntil([&] { return MetricsPortFromLog(Log("quantd-worker")).has_value(); },
            std::chrono::seconds(30));
  worker_metrics_port = MetricsPortFromLog(Log("quantd-worker")).value_or(0);
  // Ready = connected to quantd.
  if (worker_metrics_port == 0 ||
      !WaitUntil([&] { return Get(worker_metrics_port, "/readyz").first == 200; },
                 std::chrono::seconds(30))) {
    error = "quantd-worker did not connect:\n" + Log("quantd-worker");
  }
}

void Stack::StartPrometheus() {
  const std::string config = dir.path() + "/prometheus.yml";
  // Same job names as deploy/prometheus/prometheus.yml, so the dashboards' queries apply.
  std::ofstream(config) << "global:\n"
                           // Often enough to catch a job of a few seconds running.
                           "  scrape_interval: 250ms\n"
                           "  scrape_timeout: 250ms\n"
                           "  evaluation_interval: 1s\n"
                           "rule_files: ['"
                        << kAlertRules
                        << "']\n"
                           "scrape_configs:\n"
                           "  - job_name: quantd\n"
                           "    static_configs: [{targets: ['127.0.0.1:"
                        << server_metrics_port
                        << "']}]\n"
                           "  - job_name: quantd-worker\n"
                           "    static_configs: [{targets: ['127.0.0.1:"
                        << worker_metrics_port << "']}]\n";
  absl::StatusOr<int> port = PickFreeLoopbackPort();
  if (!port.ok()) {
    error = port.status().ToString();
    return;
  }
  prometheus_port = *port;
  Start("prometheus",
        {kPrometheus, "--config.file=" + config,
         absl::StrCat("--storage.tsdb.path=", dir.path(), "/tsdb"),
         absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port), "--log.level=warn"});
  if (!WaitUntil([&] { return Get(prometheus_port, "/-/ready").first == 200; },
                 std::chrono::seconds(60))) {
    error = "Prometheus did not start:\n" + Log("prometheus");
  }
}

void Stack::RunJob() {
  ChildProcess* quantctl = Start(
      "quantctl", {absl::StrCat(kBin, "quantctl"), absl::StrCat("--address=127.0.0.1:", grpc_port),
                   "submit", "--model-dir", absl::StrCat(kDemoModel, "/model"), "--calib-jsonl",
                   absl::StrCat(kDemoModel, "/calib.jsonl"), "--output-dir", dir.path() + "/out",
                   "--num-calib", "8", "--max-seq-len", std::to_string(kMaxSeqLen),
                   "--apply-chat-template=false", "--follow"});
  if (quantctl == nullptr) return;
  const auto give_up = Clock::now() + std::chrono::seconds(kJobSeconds);
  std::optional<int> status;
  while (!status && Clock::now() < give_up) {
    // Keep what both processes export while the worker reports the job running.
    if (worker_metrics_while_running.empty()) {
      std::string worker = Get(worker_metrics_port, "/metrics").second;
      if (absl::StrContains(worker, "\nquantd_worker_jobs_running 1\n")) {
        worker_metrics_while_running = worker;
        server_metrics_while_running = Get(server_metrics_port, "/metrics").second;
      }
    }
    status = quantctl->WaitExit(500);
  }
  quantctl_output = Log("quantctl");
  if (!status) {
    error = "the job did not finish in time:\n" + quantctl_output;
    return;
  }
  quantctl_status = *status;
  if (quantctl_status != 0) {
    error = absl::StrCat("quantctl submit --follow: wait status ", quantctl_status, "\n",
                         quantctl_output, "\nworker log:\n", Log("quantd-worker"));
  }
}

// One instant query's single value, or nullopt with `why` filled in.
std::optional<double> QueryScalar(int port, const std::string& promql, std::string* why) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
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

void ExpectPrometheusSeesTheJob(Stack& stack) {
  // Each query and the value it must reach once Prometheus has scraped the finished job.
  const std::vector<std::pair<std::string, double>> expectations = {
      {R"(up{job="quantd"})", 1},
      {R"(up{job="quantd-worker"})", 1},
      {"quantd_build_info", 1},
      {"quantd_jobs_submitted_total", 1},
      {R"(quantd_jobs_finished_total{outcome="succeeded"})", 1},
      {R"(sum(quantd_jobs_finished_total{outcome=~"failed|cancelled"}))", 0},
      {"sum(quantd_jobs)", 0},
      {"quantd_job_attempts_total", 1},
      {"quantd_job_requeues_total", 0},
      {"quantd_job_queue_wait_seconds_count", 1},
      {R"(quantd_job_duration_seconds_count{outcome="succeeded"})", 1},
      {R"(quantd_workers{state="idle"})", 1},
      {R"(quantd_gpus{state="free"})", 1},  // The worker's one CPU slot.
      {"quantd_watchers", 0},
      {R"(quantd_grpc_requests_total{method="SubmitJob",code="OK"})", 1},
      {R"(quantd_store_operation_duration_seconds_count{operation="create_job"})", 1},
      {"quantd_worker_build_info", 1},
      {"quantd_worker_connected", 1},
      {"quantd_worker_reconnects_total", 0},
      {"quantd_worker_layer_duration_seconds_count", kLayers},
      {R"(quantd_worker_jobs_finished_total{outcome="succeeded"})", 1},
      {"quantd_worker_jobs_running", 0},
      {"quantd_worker_job_progress_ratio", 0},
      // Whole blocks of kMaxSeqLen tokens through each of the layers (-1: any value, one series).
      {"quantd_worker_tokens_processed_total > 0", -1},
      {absl::StrCat("quantd_worker_tokens_processed_total % ", kLayers * kMaxSeqLen), 0},
      {"quantd_worker_layer_duration_seconds_sum > 0", -1},
      // Prometheus scraped both processes while the job ran.
      {"max_over_time(quantd_worker_jobs_running[30m])", 1},
      {R"(max_over_time(quantd_jobs{state="running"}[30m]))", 1},
  };
  std::string failing;
  WaitUntil(
      [&] {
        failing.clear();
        for (const auto& [promql, expected] : expectations) {
          std::string why;
          std::optional<double> value = QueryScalar(stack.prometheus_port, promql, &why);
          if (!value || (expected >= 0 && *value != expected)) {
            failing = absl::StrCat(
                promql, " -> ", value ? std::to_string(*value) : why, " (expected ",
                expected < 0 ? std::string("a series") : std::to_string(expected), ")");
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(60));
  EXPECT_EQ(failing, "") << "Prometheus log:\n" << stack.Log("prometheus");

  // deploy/'s alert rules loaded and evaluate without errors against these series.
  auto [status, rules] = Get(stack.prometheus_port, "/api/v1/rules");
  ASSERT_EQ(status, 200);
  nlohmann::json body = nlohmann::json::parse(rules, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << rules;
  int rule_count = 0;
  for (const nlohmann::json& group : body["data"]["groups"]) {
    for (const nlohmann::json& rule : group["rules"]) {
      ++rule_count;
      EXPECT_EQ(rule.value("health", ""), "ok") << rule.dump();
    }
  }
  EXPECT_GT(rule_count, 0) << rules;
}

void ExpectPromtoolAcceptsBothDuringAndAfter(Stack& stack) {
  ASSERT_FALSE(stack.worker_metrics_while_running.empty()) << "never saw the job running";
  EXPECT_TRUE(
      absl::StrContains(stack.server_metrics_while_running, "quantd_jobs{state=\"running\"} 1"))
      << stack.server_metrics_while_running;
  const std::vector<std::pair<std::string, std::string>> expositions = {
      {"server, job running", stack.server_metrics_while_running},
      {"worker, job running", stack.worker_metrics_while_running},
      {"server, after", Get(stack.server_metrics_port, "/metrics").second},
      {"worker, after", Get(stack.worker_metrics_port, "/metrics").second},
  };
  for (const auto& [what, text] : expositions) {
    EXPECT_TRUE(absl::StrContains(text, "# TYPE quantd_")) << what << ":\n" << text;
    EXPECT_EQ(PromtoolComplaints(text, stack.dir.path()), "") << what << ":\n" << text;
  }
}

void ExpectHealthAndReadiness(Stack& stack) {
  for (int port : {stack.server_metrics_port, stack.worker_metrics_port}) {
    EXPECT_EQ(Get(port, "/healthz"), (std::pair<int, std::string>{200, "ok\n"})) << port;
    EXPECT_EQ(Get(port, "/readyz").first, 200) << port;
  }
}

// Every line of a --log-format=json log; each must be a JSON object with the common fields.
std::vector<nlohmann::json> JsonLines(const std::string& log, const std::string& component) {
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << component << " wrote a line that is not JSON: " << line;
    if (!j.is_object()) continue;
    for (const char* key : {"time", "level", "component", "message"}) {
      EXPECT_TRUE(j.contains(key)) << key << " missing: " << line;
    }
    EXPECT_EQ(j.value("component", ""), component) << line;
    lines.push_back(std::move(j));
  }
  return lines;
}

void ExpectJsonLogsAndJobLinesInTheEventStream(Stack& stack) {
  std::string job_id;
  bool server_line_for_job_on_worker = false;
  for (const nlohmann::json& line : JsonLines(stack.Log("quantd"), "quantd")) {
    if (absl::StartsWith(line.value("message", ""), "job submitted")) {
      job_id = line.value("job_id", "");
    }
    server_line_for_job_on_worker =
        server_line_for_job_on_worker || (!job_id.empty() && line.value("job_id", "") == job_id &&
                                          line.value("worker_id", "") == "ops-worker");
  }
  ASSERT_FALSE(job_id.empty()) << "no \"job submitted\" line with a job_id:\n"
                               << stack.Log("quantd");
  EXPECT_TRUE(server_line_for_job_on_worker) << stack.Log("quantd");
  bool worker_line_for_job = false;
  for (const nlohmann::json& line : JsonLines(stack.Log("quantd-worker"), "quantd-worker")) {
    worker_line_for_job = worker_line_for_job || (line.value("job_id", "") == job_id &&
                                                  line.value("worker_id", "") == "ops-worker");
  }
  EXPECT_TRUE(worker_line_for_job) << stack.Log("quantd-worker");
  // The worker's own lines about the job, as log events beside the engine's (quantctl --follow
  // prints the job's event stream).
  EXPECT_TRUE(absl::StrContains(stack.quantctl_output,
                                "log info quantd-worker: starting attempt 1 on a CPU slot"))
      << stack.quantctl_output;
  EXPECT_TRUE(absl::StrContains(stack.quantctl_output, "log info quantd-worker: engine finished"))
      << stack.quantctl_output;
}

TEST(OpsStackTest, RealJobIsScrapedCheckedAndLogged) {
  ASSERT_TRUE(std::filesystem::exists(kPrometheus) && std::filesystem::exists(kPromtool))
      << "install Debian's prometheus package (scripts/install-deps.sh)";
  Stack stack;
  ASSERT_FALSE(stack.dir.path().empty());
  for (auto step : {&Stack::StartProcesses, &Stack::StartPrometheus, &Stack::RunJob}) {
    if (stack.error.empty()) (stack.*step)();
  }
  ASSERT_EQ(stack.error, "");
  {
    SCOPED_TRACE("Prometheus");
    ExpectPrometheusSeesTheJob(stack);
  }
  {
    SCOPED_TRACE("promtool");
    ExpectPromtoolAcceptsBothDuringAndAfter(stack);
  }
  {
    SCOPED_TRACE("health");
    ExpectHealthAndReadiness(stack);
  }
  {
    SCOPED_TRACE("logs");
    ExpectJsonLogsAndJobLinesInTheEventStream(stack);
  }
  {
    SCOPED_TRACE("worker readiness follows its connection");
    stack.children.front().Stop();  // quantd goes away.
    std::pair<int, std::string> ready;
    WaitUntil(
        [&] {
          ready = Get(stack.worker_metrics_port, "/readyz");
          return ready.first == 503;
        },
        std::chrono::seconds(20));
    EXPECT_EQ(ready.first, 503);
    EXPECT_TRUE(absl::StrContains(ready.second, "not connected to quantd")) << ready.second;
    EXPECT_TRUE(absl::StrContains(Get(stack.worker_metrics_port, "/metrics").second,
                                  "\nquantd_worker_connected 0\n"));
  }
}

}  // namespace
}  // namespace quantd::testing
