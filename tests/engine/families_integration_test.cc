// Every supported family end to end on the CPU reference backend, on a miniature random model of
// its feature set (testing/family_models.h):
//  - the engine's float forward pass agrees with the independent numpy reader
//    (tests/tools/awq_reader.py, written from the transformers modeling files), which checks every
//    family feature of the forward (norm kinds, GeGLU, soft-capping, windows, q/k norms, local
//    RoPE, fused Linears) against a second implementation;
//  - Quantize() writes a checkpoint that follows spec/output-format.md (the independent checker),
//    whose logits, read back by the reader, are closer to the float model's than
//    round-to-nearest's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "io/checkpoint_reader.h"
#include "io/json_file.h"
#include "quantd/engine/quantize.h"
#include "testing/awq_reader_run.h"
#include "testing/family_models.h"
#include "testing/io_output_format_checker.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"

namespace quantd::engine {
namespace {

constexpr int kLen = 64;
constexpr int kRows = 4;

std::string WriteModel(const testing::IoTempDir& dir, const std::string& family, DType dtype) {
  testing::RandomModelOptions o;
  o.config = testing::MiniatureConfig(family);
  o.output_dir = dir.Sub(family + "-" + std::string(DTypeName(dtype)));
  o.dtype = dtype;
  o.seed = 7;
  o.outlier_channels = 4;
  o.outlier_scale = 8.0f;
  o.fused_experts = testing::FusedExperts(family);
  const absl::Status s = testing::WriteRandomModel(o);
  EXPECT_TRUE(s.ok()) << family << ": " << s;
  return o.output_dir;
}

// The engine's mean next-token NLL of the rows (positions 0..len-2) through the CPU backend, in
// the model's dtype.
double EngineFloatNll(const std::string& model_dir, const std::string& rows_jsonl) {
  absl::StatusOr<SourceModel> model = OpenSourceModel(model_dir, 128, {"lm_head"});
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return NAN;
  const ModelConfig& c = model->config;
  std::vector<std::vector<int32_t>> blocks;
  std::string text = testing::ReadTextFile(rows_jsonl);
  for (size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
    const nlohmann::json row = nlohmann::json::parse(text.substr(at, end - at));
    blocks.push_back(row["input_ids"].get<std::vector<int32_t>>());
  }
  absl::StatusOr<Tensor> embedding = model->weights->LoadEmbedding();
  absl::StatusOr<Tensor> norm = model->weights->LoadFinalNorm();
  absl::StatusOr<Tensor> head = model->weights->LoadLmHead(c);
  EXPECT_TRUE(embedding.ok() && norm.ok() && head.ok());
  ScaleEmbeddingRows(c, c.dtype, &*embedding);
  std::unique_ptr<Backend> cpu = CreateCpuBackend();
  absl::StatusOr<std::unique_ptr<Activations>> hidden = cpu->Embed(*embedding, blocks);
  EXPECT_TRUE(hidden.ok());
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    absl::StatusOr<LayerWeights> w = model->weights->LoadLayer(c, l);
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE(cpu->ForwardLayer(c, c.dtype, *w, hidden->get()).ok());
  }
  const Tensor& h = static_cast<CpuActivations*>(hidden->get())->hidden();
  double nll = 0.0;
  int64_t count = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    Tensor rows({kLen, c.hidden_size});
    std::copy_n(h.ptr() + static_cast<int64_t>(b) * kLen * c.hidden_size, kLen * c.hidden_size,
                rows.ptr());
    const Tensor logits = CpuLogits(c, c.dtype, *norm, *head, rows);
    for (int t = 0; t + 1 < kLen; ++t) {
      const float* z = logits.ptr() + int64_t{t} * c.vocab_size;
      double mx = z[0], sum = 0.0;
      for (int j = 1; j < c.vocab_size; ++j) mx = std::max<double>(mx, z[j]);
      for (int j = 0; j < c.vocab_size; ++j) sum += std::exp(z[j] - mx);
      nll += std::log(sum) + mx - z[blocks[b][static_cast<size_t>(t) + 1]];
      ++count;
    }
  }
  return nll / static_cast<double>(count);
}

class FamiliesTest : public ::testing::TestWithParam<std::string> {};

// float32 models: the engine then rounds nothing, and the two forwards may differ only in the
// order of float32 sums.
TEST_P(FamiliesTest, FloatForwardMatchesTheIndependentReader) {
  const std::string family = GetParam();
  testing::IoTempDir dir;
  const std::string model = WriteModel(dir, family, DType::kF32);
  const std::string rows = dir.Sub("rows.jsonl");
  testing::WriteRandomTokenRows(rows, kRows, kLen, 256, 3);
  const double engine = EngineFloatNll(model, rows);
  testing::AwqReaderRun run;
  run.float_dir = model;
  run.calib_jsonl = rows;
  run.rows = kRows;
  run.rtn_group_size = 128;
  absl::StatusOr<testing::AwqReaderResult> reader = testing::RunAwqReader(run);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::printf("[family] %-12s float NLL engine %.6f reader %.6f\n", family.c_str(), engine,
              reader->float_nll);
  EXPECT_NEAR(engine, reader->float_nll, 1e-4 * std::fabs(reader->float_nll));
}

TEST_P(FamiliesTest, QuantizesEndToEndBetterThanRoundToNearest) {
  const std::string family = GetParam();
  testing::IoTempDir dir;
  const nlohmann::json config = testing::MiniatureConfig(family);
  const DType dtype = config["torch_dtype"] == "float16" ? DType::kF16 : DType::kBF16;
  const std::string model = WriteModel(dir, family, dtype);
  const std::string calib = dir.Sub("calib.jsonl");
  testing::WriteRandomTokenRows(calib, 8, kLen, 256, 5);
  QuantizeOptions o;
  o.model_dir = model;
  o.output_dir = dir.Sub("out");
  o.calib_jsonl = calib;
  o.num_calib = 8;
  o.max_seq_len = kLen;
  o.apply_chat_template = false;
  o.backend = BackendKind::kCpu;
  o.artifact_digests = false;
  absl::StatusOr<QuantizeResult> result = Quantize(o, nullptr, nullptr);
  ASSERT_TRUE(result.ok()) << family << ": " << result.status();
  // The default output dtype: float16, bfloat16 for Gemma (its activations overflow float16).
  testing::OutputFormatExpectations expect;
  expect.float_dtype = family.rfind("gemma", 0) == 0 ? "bfloat16" : "float16";
  const std::vector<std::string> violations =
      testing::CheckOutputFormat(o.output_dir, model, expect);
  EXPECT_TRUE(violations.empty()) << absl::StrJoin(violations, "\n");

  testing::AwqReaderRun run;
  run.float_dir = model;
  run.calib_jsonl = calib;
  run.rows = kRows;
  run.rtn_group_size = 128;
  absl::StatusOr<double> rtn = testing::ReaderRelativeLogitsError(run);
  run.quantized_dir = o.output_dir;
  absl::StatusOr<double> awq = testing::ReaderRelativeLogitsError(run);
  ASSERT_TRUE(rtn.ok() && awq.ok()) << rtn.status() << " " << awq.status();
  std::printf("[family] %-12s logits error AWQ %.5f, round-to-nearest %.5f\n", family.c_str(), *awq,
              *rtn);
  EXPECT_LT(*awq, *rtn);
}

INSTANTIATE_TEST_SUITE_P(All, FamiliesTest, ::testing::ValuesIn(testing::FamilyNames()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace quantd::engine
