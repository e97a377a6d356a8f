// The real engine end to end: the demo model (demo/models/tiny-qwen2-wp) and the MoE test model
// (tests/data/models/tiny-qwen3-moe-wp) quantized by quantize-awq through quantd, its local
// quantd-worker and `quantctl submit --follow`; the artifacts it prints exist and match their
// sha256.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "absl/strings/str_split.h"
#include "file_digest.h"
#include "service_harness.h"
#include "tests/testing/test_data.h"

namespace quantd::testing {
namespace {

namespace fs = std::filesystem;

// Submits `model`/model with its calib.jsonl through quantctl to a quantd with a local worker and
// checks the job's artifacts.
void SubmitAndCheck(const std::string& name, const fs::path& model,
                    const std::vector<std::string>& calibration_flags) {
  const std::string engine = ServiceHarness::Binary("quantize-awq");
  ASSERT_TRUE(fs::exists(engine)) << engine;
  ASSERT_TRUE(fs::exists(model / "model" / "config.json")) << model;
  ServiceHarness h(name);
  auto server = h.StartServer({"--local-worker=true", "--engine=" + engine,
                               "--allowed-roots=" + fs::canonical(model).string()});
  ASSERT_GT(h.port(), 0);
  const fs::path out = h.dir() / "awq";
  std::vector<std::string> args = {"submit",
                                   "--model-dir",
                                   (model / "model").string(),
                                   "--calib-jsonl",
                                   (model / "calib.jsonl").string(),
                                   "--output-dir",
                                   out.string()};
  args.insert(args.end(), calibration_flags.begin(), calibration_flags.end());
  args.push_back("--follow");
  CommandResult r = h.Quantctl(args, absl::Seconds(500));
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
  for (const auto& entry : fs::directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string().find(".quantd-tmp"), std::string::npos);
  }
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0);
}

TEST(RealEngineIntegrationTest, TinyQwen2SucceedsThroughServerWorkerAndQuantctl) {
  // AutoAWQ's reference run's prompt: short enough that every text fits 512 tokens.
  SubmitAndCheck("RealEngineTinyQwen2",
                 fs::path(QUANTD_SOURCE_DIR) / "demo" / "models" / "tiny-qwen2-wp",
                 {"--num-calib", "32", "--max-seq-len", "512", "--system-prompt",
                  "You are a helpful assistant."});
}

// A mixture-of-experts job (Qwen3-MoE, 8 experts) is a job like any other.
TEST(RealEngineIntegrationTest, TinyQwen3MoeSucceedsThroughServerWorkerAndQuantctl) {
  SubmitAndCheck("RealEngineTinyQwen3Moe",
                 fs::path(quantd::test_data::Path("models/tiny-qwen3-moe-wp")),
                 {"--num-calib", "16", "--max-seq-len", "256", "--apply-chat-template", "false"});
}

}  // namespace
}  // namespace quantd::testing
