// The CUDA backend's checkpoint against the CPU backend's, end to end: Quantize() runs once with
// each backend on the same calibration, and the independent numpy reader
// (tests/tools/awq_reader.py) measures each checkpoint's relative logits error against the float
// model on the first calibration blocks. The CUDA checkpoint's error must be within 0.5 %
// (relative) of the CPU's, and both must beat round-to-nearest. Built only with the CUDA backend;
// skips itself where no GPU is present.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/engine/quantize.h"
#include "testing/awq_reader_run.h"
#include "testing/family_models.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

constexpr int kReaderRows = 4;

// Quantizes with `backend` into dir/<name>/out, dumping the calibration blocks beside it; returns
// the wall seconds, or a negative number after a failure.
double QuantizeWith(QuantizeOptions options, BackendKind backend, const std::string& dir) {
  std::filesystem::create_directories(dir);
  options.backend = backend;
  options.output_dir = dir + "/out";
  options.dump_calib = dir + "/calib_dump.json";
  options.artifact_digests = false;
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<QuantizeResult> result = Quantize(options, nullptr, nullptr);
  if (!result.ok()) {
    ADD_FAILURE() << "Quantize into " << dir << ": " << result.status();
    return -1.0;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The first `rows` blocks of a calibration dump ({"seq_len", "blocks"}) as the reader's
// {"input_ids": [...]} rows in `jsonl`; false (with a failure) when the dump has fewer.
bool WriteReaderRows(const std::string& dump_path, int rows, const std::string& jsonl) {
  std::ifstream in(dump_path);
  const nlohmann::json dump = nlohmann::json::parse(in, nullptr, false);
  if (dump.is_discarded() || !dump.contains("blocks") || !dump["blocks"].is_array() ||
      dump["blocks"].size() < static_cast<size_t>(rows)) {
    ADD_FAILURE() << dump_path << ": expected a calibration dump with at least " << rows
                  << " blocks";
    return false;
  }
  std::ofstream out(jsonl);
  for (int r = 0; r < rows; ++r) {
    out << nlohmann::json{{"input_ids", dump["blocks"][static_cast<size_t>(r)]}}.dump() << "\n";
  }
  return static_cast<bool>(out);
}

double ReaderError(const testing::AwqReaderRun& run) {
  absl::StatusOr<double> error = testing::ReaderRelativeLogitsError(run);
  if (!error.ok()) {
    ADD_FAILURE() << error.status();
    return std::nan("");
  }
  return *error;
}

void CompareCheckpoints(const std::string& name, const QuantizeOptions& options) {
  if (!CudaDeviceAvailable()) GTEST_SKIP() << "no CUDA device";
  testing::IoTempDir tmp;
  ASSERT_FALSE(tmp.path().empty()) << "cannot create a temporary directory";
  const double cpu_seconds = QuantizeWith(options, BackendKind::kCpu, tmp.Sub("cpu"));
  const double cuda_seconds = QuantizeWith(options, BackendKind::kCuda, tmp.Sub("cuda"));
  ASSERT_GE(cpu_seconds, 0.0);
  ASSERT_GE(cuda_seconds, 0.0);
  // Both backends must have quantized on the same tokens, which the reader then evaluates.
  ASSERT_EQ(testing::ReadTextFile(tmp.Sub("cpu/calib_dump.json")),
            testing::ReadTextFile(tmp.Sub("cuda/calib_dump.json")));
  const std::string rows = tmp.Sub("reader_rows.jsonl");
  ASSERT_TRUE(WriteReaderRows(tmp.Sub("cpu/calib_dump.json"), kReaderRows, rows));

  testing::AwqReaderRun run;
  run.float_dir = options.model_dir;
  run.calib_jsonl = rows;
  run.rows = kReaderRows;
  const double rtn = ReaderError(run);
  run.quantized_dir = tmp.Sub("cpu/out");
  const double cpu = ReaderError(run);
  run.quantized_dir = tmp.Sub("cuda/out");
  const double cuda = ReaderError(run);
  const double relative = std::fabs(cuda - cpu) / cpu;
  std::printf("[reader] %s: logits error cpu %.5f cuda %.5f (%.3f %%), rtn %.5f\n", name.c_str(),
              cpu, cuda, 100.0 * relative, rtn);
  std::printf("[reader] %s: Quantize() cpu %.1f s, cuda %.1f s\n", name.c_str(), cpu_seconds,
              cuda_seconds);
  ASSERT_TRUE(std::isfinite(cpu) && std::isfinite(cuda) && std::isfinite(rtn));
  EXPECT_LE(relative, 0.005)
      << "the CUDA checkpoint's logits error is not within 0.5 % of the CPU's";
  EXPECT_LT(cpu, rtn) << "the CPU checkpoint is no better than round-to-nearest";
  EXPECT_LT(cuda, rtn) << "the CUDA checkpoint is no better than round-to-nearest";
}

// Calibration on `num_calib` rows of `calib_jsonl` in blocks of `max_seq_len`, no chat template.
QuantizeOptions PlainCalibration(const std::string& model_dir, const std::string& calib_jsonl,
                                 int num_calib, int max_seq_len) {
  QuantizeOptions o;
  o.model_dir = model_dir;
  o.calib_jsonl = calib_jsonl;
  o.num_calib = num_calib;
  o.max_seq_len = max_seq_len;
  o.apply_chat_template = false;
  return o;
}

// The AutoAWQ parity fixture (MHA, planted outlier channels), calibrated as the parity test does.
TEST(CudaCheckpointGpuTest, LlamaMhaLogitsErrorMatchesCpu) {
  const std::string fixture = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  CompareCheckpoints("llama-mha",
                     PlainCalibration(fixture + "/model", fixture + "/calib.jsonl", 16, 128));
}

// The really trained GQA model (q/k/v bias, tied embeddings, sharded fp16) on the calibration texts
// it ships with, tokenized by the engine: 512-token blocks without chat template as the pipeline's
// perplexity test, but 64 of the 256 texts (sampled with the default seed) rather than 128, which
// keeps the CPU reference run short on the device machine.
TEST(CudaCheckpointGpuTest, TinyQwen2LogitsErrorMatchesCpu) {
  const std::string model = quantd::test_data::Path("models/tiny-qwen2-wp");
  CompareCheckpoints("tiny-qwen2-wp",
                     PlainCalibration(model + "/model", model + "/calib.jsonl", 64, 512));
}

// The MoE quality target of issue 13 on the GPU (the CPU suite's pipeline_tiny_qwen3_moe test
// checks it on the CPU reference): tiny-qwen3-moe-wp, first 128 calibration texts, plain,
// 512-token blocks, held-out perplexity ≤ 53.85 (float 53.51, round-to-nearest 54.37); the same
// run with the router's input columns left unscaled (AutoAWQ's behaviour) is measured beside it.
TEST(CudaCheckpointGpuTest, TinyQwen3MoePerplexityWithAndWithoutRouterScaling) {
  if (!CudaDeviceAvailable()) GTEST_SKIP() << "no CUDA device";
  const std::string model = quantd::test_data::Path("models/tiny-qwen3-moe-wp");
  testing::IoTempDir tmp;
  const std::string calib =
      testing::WriteFirstLines(model + "/calib.jsonl", 128, tmp.Sub("calib_first.jsonl"));
  double ppl[2] = {0.0, 0.0};
  for (int unscaled = 0; unscaled < 2; ++unscaled) {
    QuantizeOptions o = PlainCalibration(model + "/model", calib, 128, 512);
    o.eval_text = model + "/heldout.txt";
    o.moe_router_unscaled_for_testing = unscaled == 1;
    const std::string dir = tmp.Sub(unscaled ? "unscaled" : "scaled");
    const double seconds = QuantizeWith(o, BackendKind::kCuda, dir);
    ASSERT_GE(seconds, 0.0);
    std::ifstream in(dir + "/out/quant_report.json");
    const nlohmann::json report = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(report.is_discarded());
    ppl[unscaled] = report["evaluation"]["perplexity_quantized"].get<double>();
    std::printf(
        "[reader] tiny-qwen3-moe-wp router %s: perplexity float %.3f quantized %.3f "
        "(Quantize() %.1f s)\n",
        unscaled ? "unscaled (AutoAWQ)" : "scaled (quantd)",
        report["evaluation"]["perplexity_float"].get<double>(), ppl[unscaled], seconds);
  }
  EXPECT_LE(ppl[0], 53.85);
}

// Every family's miniature (testing/family_models.h): the checkpoints of both backends through the
// reader, within 0.5 % of each other and below round-to-nearest.
class CudaFamilyCheckpointGpuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFamilyCheckpointGpuTest, LogitsErrorMatchesCpu) {
  if (!CudaDeviceAvailable()) GTEST_SKIP() << "no CUDA device";
  const std::string family = GetParam();
  testing::IoTempDir tmp;
  testing::RandomModelOptions o;
  o.config = testing::MiniatureConfig(family);
  o.output_dir = tmp.Sub("model");
  o.dtype = o.config["torch_dtype"] == "float16" ? DType::kF16 : DType::kBF16;
  o.seed = 7;
  o.outlier_channels = 4;
  o.outlier_scale = 8.0f;
  ASSERT_TRUE(testing::WriteRandomModel(o).ok());
  const std::string calib = tmp.Sub("calib.jsonl");
  testing::WriteRandomTokenRows(calib, 16, 64, 256, 5);
  CompareCheckpoints(family, PlainCalibration(o.output_dir, calib, 16, 64));
}

INSTANTIATE_TEST_SUITE_P(All, CudaFamilyCheckpointGpuTest,
                         ::testing::ValuesIn(testing::FamilyNames()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace quantd::engine
