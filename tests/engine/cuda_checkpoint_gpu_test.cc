// The CUDA backend's checkpoint against the CPU backend's, end to end: Quantize() runs once with
// each backend on the same calibration, and the independent numpy reader
// (tests/tools/awq_reader.py) measures each checkpoint's relative logits error against the float
// model on the first calibration blocks. The CUDA checkpoint's error must be within 0.5 %
// (relative) of the CPU's, and both must beat round-to-nearest. The quality reports agree too: the
// held-out perplexities (the CUDA backend forwards the held-out states on the weights it holds,
// the quantized model's on the layer its final quantization dequantized in place) and every
// scaling group's round-to-nearest / AWQ error. Compressed-tensors checkpoints (symmetric in
// bfloat16, per-channel) exercise the CUDA quantizer's other schemes. Built only with the CUDA
// backend; skips itself where no GPU is present.
#include <algorithm>
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

double ReaderError(const testing::AwqReaderRun& run) {
  absl::StatusOr<double> error = testing::ReaderRelativeLogitsError(run);
  if (!error.ok()) {
    ADD_FAILURE() << error.status();
    return std::nan("");
  }
  return *error;
}

// The two backends' quality reports. Where both chose the same ratio for a group, its
// round-to-nearest and AWQ output error on the quality slice agree within 3 % (module forwards in
// different arithmetic). A group whose ratio differs must be a near-tie — each backend's best loss
// on all tokens within 0.2 % of the other's (the arithmetic differs by far less; more means one
// backend's losses are off) — and its AWQ error on the slice is then not compared: on a slice of
// one 128-token block two nearly equal choices can be 5 % apart (the parity fixture per-channel,
// layer 1 v_proj→o_proj, docs/quality.md). Perplexities within 0.2 % when every ratio agrees,
// 0.5 % (the checkpoints' bound) when one differs, as mean NLL. Same vLLM verdicts.
void CompareQuality(const std::string& name, const std::string& cpu_dir,
                    const std::string& cuda_dir) {
  auto read = [](const std::string& dir) {
    std::ifstream in(dir + "/quant_report.json");
    return nlohmann::json::parse(in, nullptr, false);
  };
  const nlohmann::json cpu = read(cpu_dir), cuda = read(cuda_dir);
  ASSERT_TRUE(cpu.contains("quality") && cuda.contains("quality")) << name;
  const nlohmann::json& qc = cpu["quality"];
  const nlohmann::json& qg = cuda["quality"];
  EXPECT_EQ(qc["vllm_tensor_parallel"], qg["vllm_tensor_parallel"]);
  double worst = 0.0;
  int differing = 0;
  for (size_t l = 0; l < cpu["layers"].size(); ++l) {
    const nlohmann::json& gc = cpu["layers"][l]["scaling_groups"];
    const nlohmann::json& gg = cuda["layers"][l]["scaling_groups"];
    ASSERT_EQ(gc.size(), gg.size());
    for (size_t i = 0; i < gc.size(); ++i) {
      // An under-calibrated expert's group is not searched (nor compared) on either backend.
      const bool searched = gc[i].value("searched", true);
      ASSERT_EQ(searched, gg[i].value("searched", true)) << name << " layer " << l;
      if (!searched) continue;
      const bool same = gc[i]["ratio"] == gg[i]["ratio"];
      if (!same) {
        ++differing;
        const double a = gc[i]["loss"].get<double>(), b = gg[i]["loss"].get<double>();
        std::printf(
            "[quality] %s: layer %zu %s: ratio cpu %.2f cuda %.2f, best loss cpu %.6g cuda "
            "%.6g (%.3f %%)\n",
            name.c_str(), l, gc[i]["group"].get<std::string>().c_str(),
            gc[i]["ratio"].get<double>(), gg[i]["ratio"].get<double>(), a, b,
            100.0 * std::fabs(a - b) / a);
        EXPECT_LE(std::fabs(a - b) / a, 0.002)
            << name << " layer " << l << " " << gc[i]["group"]
            << ": the backends chose different ratios that are not a near-tie";
      }
      for (const char* key : {"rtn_loss", "awq_loss"}) {
        if (!same && std::string(key) == "awq_loss") continue;
        ASSERT_TRUE(gc[i].contains(key) && gg[i].contains(key)) << name << " layer " << l;
        const double a = gc[i][key].get<double>(), b = gg[i][key].get<double>();
        worst = std::max(worst, std::fabs(a - b) / a);
        EXPECT_LE(std::fabs(a - b) / a, 0.03)
            << name << " layer " << l << " " << gc[i]["group"] << " " << key;
      }
    }
  }
  // Compared as mean NLL (ln perplexity), the quantity the parity bound is on: the random
  // miniatures' perplexities (thousands to millions over 256 tokens) turn a 0.05 % difference of
  // NLL into 0.4 % of perplexity.
  const double bound = differing == 0 ? 0.002 : 0.005;
  for (const char* key : {"perplexity_float", "perplexity_quantized"}) {
    const double a = std::log(qc[key].get<double>()), b = std::log(qg[key].get<double>());
    EXPECT_LE(std::fabs(a - b) / a, bound)
        << name << " " << key << " cpu " << qc[key] << " cuda " << qg[key] << " (mean NLL)";
  }
  std::printf(
      "[quality] %s: perplexity float cpu %.4f cuda %.4f, quantized cpu %.4f cuda %.4f; "
      "%d groups chose another ratio; group errors differ by at most %.3f %%\n",
      name.c_str(), qc["perplexity_float"].get<double>(), qg["perplexity_float"].get<double>(),
      qc["perplexity_quantized"].get<double>(), qg["perplexity_quantized"].get<double>(), differing,
      100.0 * worst);
}

void CompareCheckpoints(const std::string& name, const QuantizeOptions& options,
                        bool beat_rtn = true) {
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
  ASSERT_TRUE(
      testing::WriteReaderRowsFromDump(tmp.Sub("cpu/calib_dump.json"), kReaderRows, rows).ok());

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
  if (beat_rtn) {  // the reader's baseline is round-to-nearest group 128 with zero points
    EXPECT_LT(cpu, rtn) << "the CPU checkpoint is no better than round-to-nearest";
    EXPECT_LT(cuda, rtn) << "the CUDA checkpoint is no better than round-to-nearest";
  }
  CompareQuality(name, tmp.Sub("cpu/out"), tmp.Sub("cuda/out"));
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

// compressed-tensors, symmetric, bfloat16 scales (the CUDA quantizer's symmetric parameters, its
// final quantization in bfloat16 and the quantized held-out forward in bfloat16 on an fp16 model).
TEST(CudaCheckpointGpuTest, LlamaMhaSymmetricBfloat16CompressedTensorsMatchesCpu) {
  const std::string fixture = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  QuantizeOptions o = PlainCalibration(fixture + "/model", fixture + "/calib.jsonl", 16, 128);
  o.format = CheckpointFormat::kCompressedTensors;
  o.zero_point = false;
  o.group_size = 64;
  o.output_dtype = OutputDtype::kBFloat16;
  CompareCheckpoints("llama-mha ct sym g64 bf16", o, /*beat_rtn=*/false);
}

// compressed-tensors per-channel (one group per row in the trials, the clip search and the final
// quantization).
TEST(CudaCheckpointGpuTest, LlamaMhaPerChannelCompressedTensorsMatchesCpu) {
  const std::string fixture = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");
  QuantizeOptions o = PlainCalibration(fixture + "/model", fixture + "/calib.jsonl", 16, 128);
  o.format = CheckpointFormat::kCompressedTensors;
  o.group_size = kPerChannelGroup;
  CompareCheckpoints("llama-mha ct per-channel", o, /*beat_rtn=*/false);
}

// The MoE quality of issue 13 on the GPU (the CPU suite's pipeline_tiny_qwen3_moe test pins it on
// the CPU reference): tiny-qwen3-moe-wp, first 128 calibration texts, plain, 512-token blocks,
// held-out perplexity with the router's input columns scaled and left unscaled (AutoAWQ's
// behaviour). Issue 13's target, ≤ 53.85, is missed by AutoAWQ's method on this model
// (docs/perf.md, "Quality on tiny-qwen3-moe-wp"); the bounds pin the measured 54.447 and 54.492.
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
  EXPECT_LE(ppl[0], 54.46);
  EXPECT_LE(ppl[1], 54.51);
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
