// The real engine end to end: the demo model (demo/models/tiny-qwen2-wp) quantized by quantize-awq
// through quantd, its local quantd-worker and `quantctl submit --follow`; the artifacts it prints
// exist and match their sha256, and the default job's quality report (held-out perplexities) is in
// its terminal event, in `quantctl get` and in the Job.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "absl/strings/str_split.h"
#include "file_digest.h"
#include "service_harness.h"

namespace quantd::testing {
namespace {

namespace fs = std::filesystem;

TEST(RealEngineIntegrationTest, TinyQwen2SucceedsThroughServerWorkerAndQuantctl) {
  const std::string engine = ServiceHarness::Binary("quantize-awq");
  const fs::path model = fs::path(QUANTD_SOURCE_DIR) / "demo" / "models" / "tiny-qwen2-wp";
  ASSERT_TRUE(fs::exists(engine)) << engine;
  ASSERT_TRUE(fs::exists(model / "model" / "config.json")) << model;
  ServiceHarness h("RealEngineTinyQwen2");
  auto server = h.StartServer({"--local-worker=true", "--engine=" + engine,
                               "--allowed-roots=" + fs::canonical(model).string()});
  ASSERT_GT(h.port(), 0);
  const fs::path out = h.dir() / "tiny-qwen2-wp-awq";
  CommandResult r =
      h.Quantctl({"submit", "--model-dir", (model / "model").string(), "--calib-jsonl",
                  (model / "calib.jsonl").string(), "--output-dir", out.string(), "--num-calib",
                  "32", "--max-seq-len", "512", "--system-prompt",
                  // AutoAWQ's reference run's prompt: short enough that every text fits 512 tokens.
                  "You are a helpful assistant.", "--follow"},
                 absl::Seconds(500));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("state running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("quantizing"), std::string::npos) << r.out;
  const std::string tail = r.out.substr(r.out.rfind("succeeded"));
  std::vector<std::string> paths;
  for (absl::string_view line : absl::StrSplit(tail, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() != 4 || f[0] != "artifact") continue;
    paths.push_back(f[1]);
    ASSERT_TRUE(fs::exists(f[1])) << f[1];
    EXPECT_EQ(std::to_string(fs::file_size(f[1])), f[2]) << f[1];
    EXPECT_EQ(*worker::Sha256File(f[1]), f[3]) << f[1];
  }
  EXPECT_TRUE(std::count(paths.begin(), paths.end(), (out / "config.json").string()) == 1) << tail;
  bool has_weights = false;
  for (const std::string& p : paths) has_weights |= p.ends_with(".safetensors");
  EXPECT_TRUE(has_weights) << tail;
  // The quality report, with no flag asked: in the terminal event's line and the final summary.
  EXPECT_NE(r.out.find("state succeeded"), std::string::npos) << r.out;
  const size_t terminal = r.out.find("state succeeded");
  EXPECT_NE(r.out.find("quality: perplexity float", terminal), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("held-out tokens"), std::string::npos) << r.out;
  const std::string job_name = r.out.substr(r.out.find("job jobs/") + 4)
                                   .substr(0, r.out.substr(r.out.find("job jobs/") + 4).find(' '));
  CommandResult get = h.Quantctl({"get", job_name});
  ASSERT_EQ(get.exit_code, 0) << get.out << get.err;
  EXPECT_NE(get.out.find("quality:  perplexity float"), std::string::npos) << get.out;
  CommandResult json = h.Quantctl({"get", job_name, "-o", "json"});
  EXPECT_NE(json.out.find("\"perplexity_quantized\""), std::string::npos) << json.out;
  for (const auto& entry : fs::directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string().find(".quantd-tmp"), std::string::npos);
  }
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0);
}

}  // namespace
}  // namespace quantd::testing
