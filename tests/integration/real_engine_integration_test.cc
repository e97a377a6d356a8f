// The real engine end to end: the demo model (demo/models/tiny-qwen2-wp) and the MoE test model
// (tests/data/models/tiny-qwen3-moe-wp) quantized by quantize-awq through quantd, its local
// quantd-worker and `quantctl submit --follow`; the artifacts it prints exist and match their
// sha256.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "file_digest.h"
#include "nlohmann/json.hpp"
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
                               "--allowed-roots=" + fs::canonical(model).string() + "," +
                                   h.dir().string()});
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

// The demo model (in the repository) copied beneath `root`, for a test to damage.
fs::path CopyDemoModel(const fs::path& root) {
  const fs::path demo = fs::path(QUANTD_SOURCE_DIR) / "demo" / "models" / "tiny-qwen2-wp";
  fs::create_directories(root);
  fs::copy(demo / "model", root / "model", fs::copy_options::recursive);
  fs::copy_file(demo / "calib.jsonl", root / "calib.jsonl");
  return root;
}

// Overwrites the first element of tensor `name` of the (sharded) checkpoint in `model` with a NaN.
void PoisonFirstElement(const fs::path& model, const std::string& name) {
  std::stringstream index_text;
  index_text << std::ifstream(model / "model.safetensors.index.json").rdbuf();
  const std::string shard =
      nlohmann::json::parse(index_text.str())["weight_map"][name].get<std::string>();
  std::fstream file(model / shard, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header_size = 0;
  file.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  file.read(header.data(), static_cast<std::streamsize>(header_size));
  const nlohmann::json entry = nlohmann::json::parse(header)[name];
  const std::string dtype = entry["dtype"];
  const uint64_t begin = 8 + header_size + entry["data_offsets"][0].get<uint64_t>();
  file.seekp(static_cast<std::streamoff>(begin));
  if (dtype == "F32") {
    const uint32_t nan = 0x7fc00000;
    file.write(reinterpret_cast<const char*>(&nan), 4);
  } else {
    const uint16_t nan = dtype == "BF16" ? 0x7fc0 : 0x7e00;  // F16 otherwise.
    file.write(reinterpret_cast<const char*>(&nan), 2);
  }
}

// Bad model files through the whole service with the real engine: the job FAILS with
// INVALID_ARGUMENT naming what is wrong, and the worker and server keep going.
TEST(RealEngineIntegrationTest, NonFiniteWeightsAndABrokenChatTemplateFailNamingTheCause) {
  const std::string engine = ServiceHarness::Binary("quantize-awq");
  ServiceHarness h("RealEngineBadModels");
  const fs::path nan_root = CopyDemoModel(h.dir() / "nan");
  PoisonFirstElement(nan_root / "model", "model.layers.1.mlp.down_proj.weight");
  const fs::path template_root = CopyDemoModel(h.dir() / "template");
  std::ofstream(template_root / "model" / "chat_template.jinja") << "{% if messages %}{{ oops";
  auto server = h.StartServer({"--local-worker=true", "--engine=" + engine});
  ASSERT_GT(h.port(), 0);
  auto submit = [&](const fs::path& root, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"submit",
                                     "--model-dir",
                                     (root / "model").string(),
                                     "--calib-jsonl",
                                     (root / "calib.jsonl").string(),
                                     "--output-dir",
                                     (root / "out").string(),
                                     "--num-calib",
                                     "8",
                                     "--max-seq-len",
                                     "512",
                                     "--system-prompt",
                                     "You are a helpful assistant.",
                                     "--follow"};
    args.insert(args.end(), extra.begin(), extra.end());
    return h.Quantctl(args, absl::Seconds(300));
  };
  CommandResult nan = submit(nan_root, {"--apply-chat-template=false"});
  EXPECT_EQ(nan.exit_code, 1) << nan.out << nan.err;  // The job FAILED.
  EXPECT_NE(nan.out.find("model.layers.1.mlp.down_proj.weight\" holds NaN"), std::string::npos)
      << nan.out;
  CommandResult broken = submit(template_root, {});
  EXPECT_EQ(broken.exit_code, 1) << broken.out << broken.err;
  EXPECT_NE(broken.out.find("the chat template cannot be parsed"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find("chat_template_fallback"), std::string::npos) << broken.out;
  auto client = h.Client();
  v1::ListJobsRequest failed;
  failed.add_states(v1::JOB_STATE_FAILED);
  auto jobs = client->List(failed);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->jobs_size(), 2);
  for (const v1::Job& job : jobs->jobs()) {
    EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kInvalidArgument))
        << job.error().message();
  }
  // The explicit opt-in wraps the texts as ChatML instead, and the job succeeds.
  CommandResult fallback = submit(template_root, {"--chat-template-fallback=true"});
  EXPECT_EQ(fallback.exit_code, 0) << fallback.out << fallback.err;
  EXPECT_NE(fallback.out.find("ChatML fallback"), std::string::npos) << fallback.out;
}

}  // namespace
}  // namespace quantd::testing
