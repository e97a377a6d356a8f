// The worker reads the engine's events exactly as docs/engine-events.md defines them.
#include "engine_events.h"

#include <gtest/gtest.h>

namespace quantd::worker {
namespace {

TEST(EngineEventsTest, ProgressWithEta) {
  auto e = ParseEngineEvent(
      R"({"event":"progress","phase":"quantizing","layers_done":2,"layers_total":24,"fraction":0.41,"eta_seconds":12.5})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->kind, EngineEvent::Kind::kProgress);
  EXPECT_EQ(e->progress.phase(), v1::JOB_PHASE_QUANTIZING);
  EXPECT_EQ(e->progress.layers_done(), 2);
  EXPECT_EQ(e->progress.layers_total(), 24);
  EXPECT_DOUBLE_EQ(e->progress.fraction(), 0.41);
  EXPECT_EQ(e->progress.eta().seconds(), 12);
  EXPECT_EQ(e->progress.eta().nanos(), 500000000);
}

TEST(EngineEventsTest, ProgressWithoutEtaLeavesItUnset) {
  auto e = ParseEngineEvent(R"({"event":"progress","phase":"loading","fraction":0})");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->progress.has_eta());
  EXPECT_EQ(e->progress.phase(), v1::JOB_PHASE_LOADING);
}

TEST(EngineEventsTest, LogArtifactAndResults) {
  auto log = ParseEngineEvent(R"({"event":"log","level":"warning","message":"m"})");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->log.level(), v1::LOG_LEVEL_WARNING);
  EXPECT_EQ(log->log.message(), "m");
  const std::string sha(64, 'a');
  auto artifact = ParseEngineEvent(
      R"({"event":"artifact","path":"/o/m.safetensors","size_bytes":7,"sha256":")" + sha + "\"}");
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_EQ(artifact->artifact.path(), "/o/m.safetensors");
  EXPECT_EQ(artifact->artifact.size_bytes(), 7);
  auto failed = ParseEngineEvent(
      R"({"event":"result","status":"failed","code":"INVALID_ARGUMENT","code_number":3,"message":"bad"})");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->result, v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed->error.code(), 3);
  EXPECT_EQ(failed->error.message(), "bad");
  auto cancelled = ParseEngineEvent(R"({"event":"result","status":"cancelled"})");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->result, v1::JOB_STATE_CANCELLED);
}

TEST(EngineEventsTest, ResultCarriesTheQualityReport) {
  auto ok = ParseEngineEvent(
      R"j({"event":"result","status":"succeeded","quality":{"source":"held_out",)j"
      R"j("tokens_scored":4096,"perplexity_float":67.76,"perplexity_quantized":67.99,)j"
      R"j("perplexity_increase_percent":0.34,"awq_to_rtn_error_ratio":0.61,)j"
      R"j("vllm_tensor_parallel_sizes":[1,2,4],"vllm_kernels":["Machete (sm90)"]}})j");
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_TRUE(ok->quality.has_value());
  EXPECT_EQ(ok->quality->source(), "held_out");
  EXPECT_EQ(ok->quality->tokens_scored(), 4096);
  EXPECT_DOUBLE_EQ(ok->quality->perplexity_quantized(), 67.99);
  EXPECT_DOUBLE_EQ(ok->quality->awq_to_rtn_error_ratio(), 0.61);
  EXPECT_EQ(ok->quality->vllm_tensor_parallel_sizes_size(), 3);
  EXPECT_EQ(ok->quality->vllm_kernels(0), "Machete (sm90)");
  auto failed = ParseEngineEvent(
      R"j({"event":"result","status":"failed","code_number":9,"message":"quality check failed",)j"
      R"j("quality":{"perplexity_increase_percent":5.0}})j");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->result, v1::JOB_STATE_FAILED);
  EXPECT_DOUBLE_EQ(failed->quality->perplexity_increase_percent(), 5.0);
  EXPECT_FALSE(ParseEngineEvent(R"({"event":"result","status":"succeeded"})")->quality.has_value());
  EXPECT_FALSE(ParseEngineEvent(R"({"event":"result","status":"succeeded","quality":3})").ok());
}

TEST(EngineEventsTest, LayerWithAndWithoutGpuMemory) {
  auto cuda = ParseEngineEvent(
      R"({"event":"layer","layer":3,"layers_total":24,"seconds":1.5,"tokens":65536,"gpu_memory_bytes":1073741824,"gpu_memory_peak_bytes":2147483648})");
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  EXPECT_EQ(cuda->kind, EngineEvent::Kind::kLayer);
  EXPECT_EQ(cuda->layer.layer, 3);
  EXPECT_EQ(cuda->layer.layers_total, 24);
  EXPECT_DOUBLE_EQ(cuda->layer.seconds, 1.5);
  EXPECT_EQ(cuda->layer.tokens, 65536);
  EXPECT_EQ(cuda->layer.gpu_memory_bytes, int64_t{1} << 30);
  EXPECT_EQ(cuda->layer.gpu_memory_peak_bytes, int64_t{1} << 31);
  auto cpu = ParseEngineEvent(
      R"({"event":"layer","layer":1,"layers_total":4,"seconds":0.25,"tokens":512})");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_FALSE(cpu->layer.gpu_memory_bytes.has_value());
  EXPECT_FALSE(cpu->layer.gpu_memory_peak_bytes.has_value());
}

TEST(EngineEventsTest, RejectsWhatIsNotAnEvent) {
  for (const char* line :
       {"not json", "[1]", R"({"event":"teleport"})", R"({"event":"progress","phase":"dreaming"})",
        R"({"event":"artifact","path":"/x","size_bytes":1,"sha256":"short"})",
        R"({"event":"result","status":"maybe"})",
        R"({"event":"layer","layer":0,"layers_total":4,"seconds":1,"tokens":5})",
        R"({"event":"layer","layer":1,"layers_total":4,"seconds":-1,"tokens":5})",
        R"({"event":"layer","layer":1,"layers_total":4,"seconds":"1","tokens":5})"}) {
    auto e = ParseEngineEvent(line);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << line;
  }
}

}  // namespace
}  // namespace quantd::worker
