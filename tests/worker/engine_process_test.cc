// EngineProcess against the fake engine: the flags a job becomes, the reports and result of a run,
// and cancellation that leaves no partial output.
#include "engine_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "nlohmann/json.hpp"

namespace quantd::worker {
namespace {

namespace fs = std::filesystem;

const std::string kFakeEngine = std::string(QUANTD_BINARY_DIR) + "/bin/fake-quantize-awq";

TEST(EngineProcessTest, OptionsJsonCarriesTheSpecAndTheRoots) {
  v1::JobAssignment a;
  a.set_gpu_index(1);
  v1::JobSpec* s = a.mutable_spec();
  s->set_model_dir("/m");
  s->set_output_dir("/o");
  s->set_calib_jsonl("/c.jsonl");
  s->set_num_calib(64);
  s->set_group_size(64);
  s->set_apply_chat_template(false);
  s->set_chat_template_fallback(true);
  s->set_system_prompt(std::string(200000, 'p'));  // No argv limit on the way to the engine.
  s->set_output_dtype(v1::OUTPUT_DTYPE_BFLOAT16);
  s->mutable_modules_to_not_convert()->add_names("lm_head");
  s->mutable_modules_to_not_convert()->add_names("visual");
  a.add_allowed_roots("/models/search");
  const nlohmann::json expected = {{"model_dir", "/m"},
                                   {"output_dir", "/o"},
                                   {"calib_jsonl", "/c.jsonl"},
                                   {"num_calib", 64},
                                   {"group_size", 64},
                                   {"no_chat_template", true},
                                   {"chat_template_fallback", true},
                                   {"system_prompt", std::string(200000, 'p')},
                                   {"dtype", "bfloat16"},
                                   {"modules_to_not_convert", "lm_head,visual"},
                                   {"backend", "cuda"},
                                   {"allowed_roots", {"/models/search"}}};
  EXPECT_EQ(nlohmann::json::parse(EngineProcess::OptionsJson(a)), expected);
  a.set_gpu_index(-1);
  EXPECT_EQ(nlohmann::json::parse(EngineProcess::OptionsJson(a))["backend"], "cpu");
  s->set_gpus(2);  // data-parallel: the engine is told how many GPUs it has
  EXPECT_EQ(nlohmann::json::parse(EngineProcess::OptionsJson(a))["gpus"], 2);
}

// The format options of issue 17 as the engine's flags take them (booleans and numbers as JSON's).
TEST(EngineProcessTest, OptionsJsonCarriesTheFormatOptions) {
  v1::JobAssignment a;
  v1::JobSpec* s = a.mutable_spec();
  s->set_layout(v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS);
  s->set_zero_point(false);
  s->set_group_size(-1);
  s->set_scale_dtype(v1::OUTPUT_DTYPE_BFLOAT16);
  s->set_max_perplexity_increase_percent(2.5);
  const nlohmann::json o = nlohmann::json::parse(EngineProcess::OptionsJson(a));
  EXPECT_EQ(o["format"], "compressed-tensors");
  EXPECT_EQ(o["zero_point"], false);
  EXPECT_EQ(o["group_size"], -1);
  EXPECT_EQ(o["scale_dtype"], "bfloat16");
  EXPECT_EQ(o["max_ppl_increase"], 2.5);
  s->set_layout(v1::WEIGHT_LAYOUT_GEMM);
  s->clear_max_perplexity_increase_percent();
  const nlohmann::json gemm = nlohmann::json::parse(EngineProcess::OptionsJson(a));
  EXPECT_FALSE(gemm.contains("format"));
  EXPECT_FALSE(gemm.contains("max_ppl_increase"));
}

class EngineRun {
 public:
  explicit EngineRun(const v1::JobAssignment& a) {
    auto p = EngineProcess::Start(kFakeEngine, a,
                                  {[this](v1::JobReport r) {
                                     std::lock_guard<std::mutex> l(mu_);
                                     reports_.push_back(std::move(r));
                                     changed_.notify_all();
                                   },
                                   [this](v1::JobFinished f) {
                                     std::lock_guard<std::mutex> l(mu_);
                                     finished_ = std::move(f);
                                     changed_.notify_all();
                                   },
                                   [this](const LayerDone& layer) {
                                     std::lock_guard<std::mutex> l(mu_);
                                     layers_.push_back(layer);
                                   }},
                                  absl::Seconds(2));
    EXPECT_TRUE(p.ok()) << p.status();
    process_ = std::move(*p);
  }
  void WaitForReports(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    changed_.wait_for(l, std::chrono::seconds(10), [&] { return reports_.size() >= n; });
  }
  v1::JobFinished Finished() {
    std::unique_lock<std::mutex> l(mu_);
    changed_.wait_for(l, std::chrono::seconds(20), [&] { return finished_.has_value(); });
    return finished_.value_or(v1::JobFinished());
  }
  EngineProcess& process() { return *process_; }
  size_t reports() {
    std::lock_guard<std::mutex> l(mu_);
    return reports_.size();
  }
  std::vector<LayerDone> layers() {
    std::lock_guard<std::mutex> l(mu_);
    return layers_;
  }
  bool Logged(const std::string& message) {
    std::lock_guard<std::mutex> l(mu_);
    for (const v1::JobReport& r : reports_) {
      if (r.has_log() && r.log().message() == message) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<v1::JobReport> reports_;
  std::vector<LayerDone> layers_;
  std::optional<v1::JobFinished> finished_;
  std::unique_ptr<EngineProcess> process_;
};

class EngineProcessRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quantd-engine-process-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    std::ofstream(dir_ / "calib.jsonl") << "{\"text\": \"x\"}\n";
    assignment_.set_job_id("j");
    assignment_.set_attempt(1);
    assignment_.set_gpu_index(-1);
    assignment_.mutable_spec()->set_model_dir((dir_ / "model").string());
    assignment_.mutable_spec()->set_output_dir((dir_ / "out").string());
    assignment_.mutable_spec()->set_calib_jsonl((dir_ / "calib.jsonl").string());
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Behave(const std::string& json) {
    std::ofstream(dir_ / "model" / "fake_engine.json") << json;
  }

  fs::path dir_;
  v1::JobAssignment assignment_;
};

TEST_F(EngineProcessRunTest, AMultiGpuJobSeesExactlyItsGpusInRankOrder) {
  Behave(R"({"steps": 1, "step_ms": 1})");
  assignment_.set_gpu_index(3);
  assignment_.add_gpu_indices(3);
  assignment_.add_gpu_indices(1);
  assignment_.mutable_spec()->set_gpus(2);
  EngineRun run(assignment_);
  EXPECT_EQ(run.Finished().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(run.Logged("fake engine: --gpus 2 on CUDA_VISIBLE_DEVICES=3,1"));
}

TEST_F(EngineProcessRunTest, SuccessReportsEveryEventAndTheArtifacts) {
  Behave(R"({"steps": 3, "step_ms": 10})");
  EngineRun run(assignment_);
  v1::JobFinished finished = run.Finished();
  EXPECT_EQ(finished.state(), v1::JOB_STATE_SUCCEEDED) << finished.error().message();
  ASSERT_EQ(finished.artifacts_size(), 3);
  EXPECT_EQ(finished.artifacts(0).path(), (dir_ / "out" / "model.safetensors").string());
  // loading, log, 3 layers, exporting, 3 artifacts; the layer events go to on_layer only.
  EXPECT_EQ(run.reports(), 9u);
  std::vector<LayerDone> layers = run.layers();
  ASSERT_EQ(layers.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(layers[i].layer, i + 1);
    EXPECT_EQ(layers[i].layers_total, 3);
    EXPECT_EQ(layers[i].tokens, 1024);
    EXPECT_DOUBLE_EQ(layers[i].seconds, 0.01);
  }
}

TEST_F(EngineProcessRunTest, CancelStopsTheEngineAndRemovesItsPartialOutput) {
  Behave(R"({"steps": 200, "step_ms": 50})");
  EngineRun run(assignment_);
  run.WaitForReports(4);
  ASSERT_TRUE(fs::exists(dir_ / "out" / ".model.safetensors.quantd-tmp"));
  run.process().Cancel();
  EXPECT_EQ(run.Finished().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(fs::exists(dir_ / "out"));  // The run created it; nothing of it is left.
}

TEST_F(EngineProcessRunTest, ACrashIsAFailureNamingTheSignalAndCleansUp) {
  Behave(R"({"steps": 4, "step_ms": 10, "crash": true})");
  fs::create_directories(dir_ / "out");
  std::ofstream(dir_ / "out" / "keep.txt") << "not ours";
  EngineRun run(assignment_);
  v1::JobFinished finished = run.Finished();
  EXPECT_EQ(finished.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(finished.error().message().find("signal 6"), std::string::npos)
      << finished.error().message();
  EXPECT_FALSE(fs::exists(dir_ / "out" / ".model.safetensors.quantd-tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "out" / "keep.txt"));  // Files the job did not write stay.
  EXPECT_FALSE(finished.requeue());  // a crash is a failure of the job, not a lost attempt
}

TEST_F(EngineProcessRunTest, AnEngineKilledFromOutsideLosesTheAttemptNotTheJobAndKeepsItsOutput) {
  Behave(R"({"steps": 200, "step_ms": 50})");
  EngineRun run(assignment_);
  run.WaitForReports(4);
  ASSERT_TRUE(fs::exists(dir_ / "out" / ".model.safetensors.quantd-tmp"));
  ::kill(run.process().pid(), SIGKILL);  // as the out-of-memory killer would
  v1::JobFinished finished = run.Finished();
  EXPECT_EQ(finished.state(), v1::JOB_STATE_FAILED);
  EXPECT_TRUE(finished.requeue());
  EXPECT_NE(finished.error().message().find("signal 9"), std::string::npos)
      << finished.error().message();
  // The next attempt resumes from what the engine finished.
  EXPECT_TRUE(fs::exists(dir_ / "out" / ".model.safetensors.quantd-tmp"));
}

TEST_F(EngineProcessRunTest, ACancelledEngineIsNoRequeue) {
  Behave(R"({"steps": 200, "step_ms": 50})");
  EngineRun run(assignment_);
  run.WaitForReports(4);
  run.process().Cancel();
  v1::JobFinished finished = run.Finished();
  EXPECT_EQ(finished.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(finished.requeue());
}

TEST_F(EngineProcessRunTest, WithRootsTheRunIsConfinedAndCleansUpBeneathThem) {
  Behave(R"({"steps": 200, "step_ms": 20})");
  assignment_.add_allowed_roots(dir_.string());
  const std::string record =
      (dir_.parent_path() / ("options-" + dir_.filename().string())).string();
  setenv("FAKE_ENGINE_OPTIONS_LOG", record.c_str(), 1);
  assignment_.mutable_spec()->set_system_prompt(std::string(200000, 's'));
  EngineRun run(assignment_);
  run.WaitForReports(3);
  unsetenv("FAKE_ENGINE_OPTIONS_LOG");
  std::ifstream recorded(record);
  size_t prompt_bytes = 0;
  recorded >> prompt_bytes;
  EXPECT_EQ(prompt_bytes, 200000u);  // The whole prompt reached the engine (stdin, not argv).
  fs::remove(record);
  // Mid-run, output_dir becomes a symlink to a directory outside the roots.
  const fs::path outside = dir_.parent_path() / ("outside-" + dir_.filename().string());
  fs::create_directories(outside);
  fs::rename(dir_ / "out", dir_ / "out.moved");
  fs::create_directory_symlink(outside, dir_ / "out");
  v1::JobFinished finished = run.Finished();
  EXPECT_EQ(finished.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(finished.error().message().find("outside the allowed roots"), std::string::npos)
      << finished.error().message();
  EXPECT_TRUE(fs::is_empty(outside));  // Nothing written there, nothing removed there.
  fs::remove_all(outside);
}

TEST_F(EngineProcessRunTest, PathsOutsideTheRootsAreRefusedBeforeTheEngineStarts) {
  const fs::path outside = dir_.parent_path() / ("outside2-" + dir_.filename().string());
  fs::create_directories(outside);
  fs::create_directories(dir_ / "root");
  assignment_.add_allowed_roots((dir_ / "root").string());
  // The model is outside; then the output dir is a symlink out.
  auto p = EngineProcess::Start(kFakeEngine, assignment_, {}, absl::Seconds(1));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("spec.model_dir"), std::string::npos) << p.status();
  fs::rename(dir_ / "model", dir_ / "root" / "model");
  fs::rename(dir_ / "calib.jsonl", dir_ / "root" / "calib.jsonl");
  assignment_.mutable_spec()->set_model_dir((dir_ / "root" / "model").string());
  assignment_.mutable_spec()->set_calib_jsonl((dir_ / "root" / "calib.jsonl").string());
  fs::create_directory_symlink(outside, dir_ / "root" / "out");
  assignment_.mutable_spec()->set_output_dir((dir_ / "root" / "out").string());
  p = EngineProcess::Start(kFakeEngine, assignment_, {}, absl::Seconds(1));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("spec.output_dir"), std::string::npos) << p.status();
  EXPECT_TRUE(fs::is_empty(outside));
  fs::remove_all(outside);
}

TEST(EngineProcessStartTest, AMissingEngineIsAClearError) {
  v1::JobAssignment a;
  auto p = EngineProcess::Start("/nonexistent/quantize-awq", a, {}, absl::Seconds(1));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("/nonexistent/quantize-awq"), std::string::npos);
}

}  // namespace
}  // namespace quantd::worker
