// Quantize()'s structured errors and cancellation: each stops before anything is written under a
// final name in output_dir.
#include <filesystem>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "model/registry.h"
#include "quantd/engine/quantize.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

const std::string kFixture = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");

QuantizeOptions FixtureOptions(const std::string& name) {
  QuantizeOptions o;
  o.model_dir = kFixture + "/model";
  o.output_dir = std::string(QUANTD_BINARY_DIR) + "/pipeline_errors_test/" + name;
  std::filesystem::remove_all(o.output_dir);
  o.calib_jsonl = kFixture + "/calib.jsonl";
  o.num_calib = 16;
  o.max_seq_len = 128;
  o.apply_chat_template = false;
  o.backend = BackendKind::kCpu;
  return o;
}

void ExpectNothingWritten(const std::string& dir) {
  if (!std::filesystem::exists(dir)) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ADD_FAILURE() << "left behind: " << entry.path();
  }
}

// Cancels as soon as quantization starts.
class CancelOnQuantizing : public EngineObserver {
 public:
  explicit CancelOnQuantizing(CancellationToken* token) : token_(token) {}
  void OnProgress(const Progress& p) override {
    if (p.phase == Phase::kQuantizing) token_->Cancel();
  }

 private:
  CancellationToken* token_;
};

TEST(PipelineErrorsTest, CancellationStopsWithCancelledAndNoFiles) {
  const QuantizeOptions o = FixtureOptions("cancel");
  CancellationToken token;
  CancelOnQuantizing observer(&token);
  const absl::StatusOr<QuantizeResult> r = Quantize(o, &observer, &token);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  ExpectNothingWritten(o.output_dir);
}

TEST(PipelineErrorsTest, ExcludingALinearInsideALayerIsUnsupported) {
  QuantizeOptions o = FixtureOptions("exclude");
  o.modules_to_not_convert = {"lm_head", "mlp.down_proj"};
  const absl::StatusOr<QuantizeResult> r = Quantize(o, nullptr, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("model.layers.0.mlp.down_proj"), absl::string_view::npos)
      << r.status();
  ExpectNothingWritten(o.output_dir);
}

TEST(PipelineErrorsTest, CudaBackendWithoutCudaIsAClearError) {
#ifndef QUANTD_HAVE_CUDA
  QuantizeOptions o = FixtureOptions("cuda");
  o.backend = BackendKind::kCuda;
  const absl::StatusOr<QuantizeResult> r = Quantize(o, nullptr, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("cuda"), absl::string_view::npos);
  ExpectNothingWritten(o.output_dir);
#endif
}

TEST(PipelineErrorsTest, UnsupportedQuantSettingsNameTheField) {
  QuantizeOptions o = FixtureOptions("bits");
  o.bits = 8;
  absl::StatusOr<QuantizeResult> r = Quantize(o, nullptr, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("bits"), absl::string_view::npos);
  o = FixtureOptions("group");
  o.group_size = 100;
  r = Quantize(o, nullptr, nullptr);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("group_size"), absl::string_view::npos) << r.status();
  ExpectNothingWritten(o.output_dir);
}

TEST(PipelineErrorsTest, TooFewCalibrationTokensForOneBlock) {
  QuantizeOptions o = FixtureOptions("short");
  o.num_calib = 1;
  o.max_seq_len = 129;  // one 128-token row cannot fill a 129-token block
  const absl::StatusOr<QuantizeResult> r = Quantize(o, nullptr, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  ExpectNothingWritten(o.output_dir);
}

// The backend checks the token between scaling groups, inside a layer.
TEST(PipelineErrorsTest, BackendHonoursCancellationInsideALayer) {
  ModelConfig config;
  config.arch = FindArchitecture("LlamaForCausalLM");
  config.hidden_size = 128;
  config.intermediate_size = 128;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 2;
  config.head_dim = 64;
  config.num_hidden_layers = 1;
  LayerWeights w;
  w.input_layernorm = Tensor({128}, 1.0f);
  w.post_attention_layernorm = Tensor({128}, 1.0f);
  for (LinearWeights* l :
       {&w.q_proj, &w.k_proj, &w.v_proj, &w.o_proj, &w.gate_proj, &w.up_proj, &w.down_proj}) {
    l->weight = Tensor({128, 128}, 0.01f);
  }
  std::unique_ptr<Backend> backend = CreateCpuBackend();
  Tensor embedding({4, 128}, 0.5f);
  auto hidden = backend->Embed(embedding, {{0, 1, 2, 3}});
  ASSERT_TRUE(hidden.ok());
  CancellationToken token;
  token.Cancel();
  const absl::StatusOr<QuantizedLayer> q =
      backend->QuantizeLayer(config, LayerQuantSettings{}, std::move(w), hidden->get(), &token);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace quantd::engine
