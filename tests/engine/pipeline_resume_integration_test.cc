// Durable per-layer progress, in process on the CPU backend with tiny-qwen2-wp (demo/models): a
// run stopped after some layers keeps them in output_dir; the next run into it resumes — replays
// their float forward only — and writes a checkpoint byte-identical to an uninterrupted run's,
// with the same report decisions and perplexities; a run that is not the same computation (an
// option, the calibration) starts over and says why; --restart discards; a damaged staged layer
// is recomputed from there. (Killing real processes: tests/integration/resume_integration_test.)
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pipeline/resume_journal.h"
#include "quantd/engine/quantize.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(QUANTD_SOURCE_DIR) + "/demo/models/tiny-qwen2-wp";

std::string WorkDir(const std::string& name) {
  const std::string dir = std::string(QUANTD_BINARY_DIR) + "/pipeline_resume/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Lines [first, first + n) of the model's calib.jsonl.
std::string CalibLines(const std::string& dir, int first, int n) {
  std::ifstream in(kModel + "/calib.jsonl");
  const std::string path = dir + "/calib.jsonl";
  std::ofstream out(path);
  std::string line;
  for (int i = 0; i < first + n && std::getline(in, line); ++i) {
    if (i >= first) out << line << "\n";
  }
  return path;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

// Records log lines and progress; cancels once `cancel_after` layers are reported done.
class Observer : public EngineObserver {
 public:
  explicit Observer(CancellationToken* cancel = nullptr, int cancel_after = 0)
      : cancel_(cancel), cancel_after_(cancel_after) {}
  void OnProgress(const Progress& p) override {
    resumed_at = std::max(resumed_at, p.resumed_at_layer);
    if (cancel_ != nullptr && p.phase == Phase::kQuantizing && p.layers_done >= cancel_after_) {
      cancel_->Cancel();
    }
  }
  void OnLog(LogLevel, const std::string& m) override { log += m + "\n"; }
  std::string log;
  int resumed_at = 0;

 private:
  CancellationToken* cancel_;
  int cancel_after_;
};

class PipelineResumeTest : public ::testing::Test {
 protected:
  QuantizeOptions Options(const std::string& dir, const std::string& calib) {
    QuantizeOptions o;
    o.model_dir = kModel + "/model";
    o.output_dir = dir + "/out";
    o.calib_jsonl = calib;
    o.num_calib = 8;
    o.max_seq_len = 512;
    o.apply_chat_template = false;
    o.backend = BackendKind::kCpu;
    return o;
  }

 public:
  // Interrupt() and the number of layers it left kept.
  int InterruptAfter(const QuantizeOptions& o, int layers) {
    Interrupt(o, layers);
    return kept_;
  }

 protected:
  // Runs until `layers` layers are done, then stops it as SIGTERM would; checks what is kept.
  void Interrupt(const QuantizeOptions& o, int layers) {
    CancellationToken cancel;
    Observer observer(&cancel, layers);
    absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, &cancel);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
    EXPECT_NE(observer.log.find("progress kept"), std::string::npos) << observer.log;
    EXPECT_FALSE(fs::exists(o.output_dir + "/model.safetensors"));  // no final name
    absl::StatusOr<JournalContents> journal = ResumeJournal::Read(o.output_dir);
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_GE(static_cast<int>(journal->layers.size()), layers);
    ASSERT_LT(static_cast<int>(journal->layers.size()), 4);
    kept_ = static_cast<int>(journal->layers.size());
  }
  int kept_ = 0;
};

// Runs `whole` uninterrupted, then into another output_dir stopped after two layers and resumed:
// the resumed run starts at the kept layer, says so, and writes the uninterrupted run's bytes and
// report (the replay rebuilt the held-out states exactly), leaving no journal or staged file.
void ExpectResumedRunMatchesUninterrupted(PipelineResumeTest* t, const QuantizeOptions& whole) {
  Observer plain;
  absl::StatusOr<QuantizeResult> reference = Quantize(whole, &plain, nullptr);
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_FALSE(fs::exists(ResumeJournal::PathFor(whole.output_dir)));  // gone once committed

  QuantizeOptions o = whole;
  o.output_dir = fs::path(whole.output_dir).parent_path().parent_path().string() + "/resumed/out";
  const int kept = t->InterruptAfter(o, 2);
  if (::testing::Test::HasFatalFailure()) return;
  Observer observer;
  absl::StatusOr<QuantizeResult> resumed = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(observer.resumed_at, kept);
  EXPECT_NE(observer.log.find("resumed at layer " + std::to_string(kept) + " of 4"),
            std::string::npos)
      << observer.log;
  EXPECT_EQ(ReadBytes(o.output_dir + "/model.safetensors"),
            ReadBytes(whole.output_dir + "/model.safetensors"));
  const nlohmann::json a = ReadJson(reference->report_path), b = ReadJson(resumed->report_path);
  EXPECT_EQ(a["layers"], b["layers"]);
  EXPECT_EQ(a["calibration"], b["calibration"]);
  ASSERT_TRUE(a["evaluation"].is_object());
  EXPECT_EQ(a["evaluation"], b["evaluation"]);
  EXPECT_EQ(a["quality"]["awq_to_rtn_error_ratio"], b["quality"]["awq_to_rtn_error_ratio"]);
  EXPECT_EQ(b["resume"]["resumed_at_layer"], kept);
  EXPECT_FALSE(fs::exists(ResumeJournal::PathFor(o.output_dir)));
  for (const fs::directory_entry& e : fs::directory_iterator(o.output_dir)) {
    EXPECT_FALSE(absl::EndsWith(e.path().string(), ".quantd-tmp")) << e.path();
  }
}

// AutoAWQ GEMM, with a few evaluation windows of held-out text given: the replay must rebuild them.
TEST_F(PipelineResumeTest, AResumedRunWritesTheUninterruptedCheckpointByteForByte) {
  const std::string dir = WorkDir("identical");
  QuantizeOptions whole = Options(dir + "/whole", CalibLines(dir, 0, 8));
  std::ifstream in(kModel + "/heldout.txt");
  std::string text(6000, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  std::ofstream(dir + "/heldout.txt") << text.substr(0, static_cast<size_t>(in.gcount()));
  whole.eval_text = dir + "/heldout.txt";
  ExpectResumedRunMatchesUninterrupted(this, whole);
}

// compressed-tensors (symmetric, per-channel, bfloat16 scales), the default held-out slice: the
// kept layers are read back from the staged weight_packed / weight_scale tensors for the quality
// report's quantized held-out states.
TEST_F(PipelineResumeTest, AResumedCompressedTensorsRunWritesTheUninterruptedCheckpoint) {
  const std::string dir = WorkDir("compressed_tensors");
  QuantizeOptions whole = Options(dir + "/whole", CalibLines(dir, 0, 8));
  whole.format = CheckpointFormat::kCompressedTensors;
  whole.zero_point = false;
  whole.group_size = kPerChannelGroup;
  whole.output_dtype = OutputDtype::kBFloat16;
  ExpectResumedRunMatchesUninterrupted(this, whole);
}

// Another format is another computation: its kept layers are not reused.
TEST_F(PipelineResumeTest, AChangedFormatStartsOver) {
  const std::string dir = WorkDir("format");
  QuantizeOptions o = Options(dir, CalibLines(dir, 0, 8));
  Interrupt(o, 1);
  o.format = CheckpointFormat::kCompressedTensors;
  Observer observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(observer.resumed_at, 0);
  EXPECT_NE(observer.log.find("the option format differs (was gemm, now compressed-tensors)"),
            std::string::npos)
      << observer.log;
}

TEST_F(PipelineResumeTest, AChangedOptionStartsOverAndSaysWhich) {
  const std::string dir = WorkDir("option");
  QuantizeOptions o = Options(dir, CalibLines(dir, 0, 8));
  Interrupt(o, 1);
  o.group_size = 64;
  Observer observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(observer.resumed_at, 0);
  EXPECT_NE(observer.log.find("starting over"), std::string::npos) << observer.log;
  EXPECT_NE(observer.log.find("the option group_size differs (was 128, now 64)"), std::string::npos)
      << observer.log;
  EXPECT_EQ(ReadJson(r->report_path)["resume"], nullptr);
}

TEST_F(PipelineResumeTest, AChangedCalibrationFileStartsOver) {
  const std::string dir = WorkDir("calibration");
  QuantizeOptions o = Options(dir, CalibLines(dir, 0, 8));
  Interrupt(o, 1);
  CalibLines(dir, 8, 8);  // same path, other texts
  Observer observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(observer.resumed_at, 0);
  EXPECT_NE(observer.log.find("the calibration token blocks differ"), std::string::npos)
      << observer.log;
}

TEST_F(PipelineResumeTest, RestartDiscardsTheKeptLayers) {
  const std::string dir = WorkDir("restart");
  QuantizeOptions o = Options(dir, CalibLines(dir, 0, 8));
  Interrupt(o, 1);
  o.restart = true;
  Observer observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(observer.resumed_at, 0);
  EXPECT_NE(observer.log.find("--restart: discarding"), std::string::npos) << observer.log;
}

TEST_F(PipelineResumeTest, ADamagedStagedLayerIsRecomputedFromThere) {
  const std::string dir = WorkDir("damaged");
  const std::string calib = CalibLines(dir, 0, 8);
  QuantizeOptions whole = Options(dir + "/whole", calib);
  ASSERT_TRUE(Quantize(whole, nullptr, nullptr).ok());
  QuantizeOptions o = Options(dir + "/resumed", calib);
  Interrupt(o, 2);
  // Flip a byte of layer 1's packed q_proj in the staged file (as a disk error would).
  const std::string staged = o.output_dir + "/.model.safetensors.quantd-tmp";
  {
    std::ifstream in(staged, std::ios::binary);
    char len_bytes[8];
    in.read(len_bytes, 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(len_bytes[i]);
    std::string header(n, ' ');
    in.read(header.data(), static_cast<std::streamsize>(n));
    const nlohmann::json h = nlohmann::json::parse(header);
    const uint64_t at =
        8 + n + h["model.layers.1.self_attn.q_proj.qweight"]["data_offsets"][0].get<uint64_t>();
    std::fstream f(staged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  }
  Observer observer;
  absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(observer.resumed_at, 1);
  EXPECT_NE(observer.log.find("layer 1's staged output"), std::string::npos) << observer.log;
  EXPECT_EQ(ReadBytes(o.output_dir + "/model.safetensors"),
            ReadBytes(whole.output_dir + "/model.safetensors"));
}

}  // namespace
}  // namespace quantd::engine
