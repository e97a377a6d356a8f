// WorkerMetricsRecorder: the worker's metrics follow its connection, its jobs and the engine's
// layer events as docs/metrics.md describes them.
#include "worker_metrics_recorder.h"

#include <gtest/gtest.h>

namespace quantd::worker {
namespace {

class WorkerMetricsRecorderTest : public ::testing::Test {
 protected:
  double Gpu(metrics::Family<metrics::Gauge>& family, const std::string& gpu) {
    return (*family.Add({{"gpu", gpu}}))->Value();
  }
  double Finished(const std::string& outcome) {
    return (*m_->jobs_finished.Add({{"outcome", outcome}}))->Value();
  }
  static LayerDone Layer(double seconds, int64_t tokens, std::optional<int64_t> used = std::nullopt,
                         std::optional<int64_t> peak = std::nullopt) {
    LayerDone layer;
    layer.layer = 1;
    layer.layers_total = 4;
    layer.seconds = seconds;
    layer.tokens = tokens;
    layer.gpu_memory_bytes = used;
    layer.gpu_memory_peak_bytes = peak;
    return layer;
  }

  metrics::Registry registry_;
  std::unique_ptr<metrics::WorkerMetrics> m_ = *metrics::WorkerMetrics::Create(registry_);
  WorkerMetricsRecorder recorder_{*m_, {0, 1}};
};

TEST_F(WorkerMetricsRecorderTest, OfferedGpusAreExportedFromTheStart) {
  const std::string text = registry_.Serialize();
  for (const char* series : {"quantd_worker_gpu_memory_used_bytes{gpu=\"0\"} 0",
                             "quantd_worker_gpu_memory_used_bytes{gpu=\"1\"} 0",
                             "quantd_worker_gpu_memory_peak_bytes{gpu=\"1\"} 0"}) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
  EXPECT_EQ(text.find("gpu=\"cpu\""), std::string::npos);
}

TEST_F(WorkerMetricsRecorderTest, ConnectionAndReconnects) {
  EXPECT_FALSE(recorder_.connected());
  recorder_.Connected();
  EXPECT_TRUE(recorder_.connected());
  EXPECT_EQ(m_->connected.Value(), 1);
  EXPECT_EQ(m_->reconnects.Value(), 0);  // The first connection is not a reconnect.
  recorder_.Disconnected();
  EXPECT_FALSE(recorder_.connected());
  EXPECT_EQ(m_->connected.Value(), 0);
  recorder_.Connected();
  EXPECT_EQ(m_->reconnects.Value(), 1);
}

TEST_F(WorkerMetricsRecorderTest, JobsLayersAndGpuMemory) {
  recorder_.JobStarted("a", 0);
  recorder_.JobProgress("a", 0.5);
  recorder_.JobLayerDone("a", Layer(2.0, 1000, 3'000'000'000, 4'000'000'000));
  recorder_.Collect();
  EXPECT_EQ(m_->jobs_running.Value(), 1);
  EXPECT_EQ(m_->job_progress_ratio.Value(), 0.5);
  EXPECT_EQ(m_->layer_duration_seconds.Collect().count, 1u);
  EXPECT_EQ(m_->layer_duration_seconds.Collect().sum, 2.0);
  EXPECT_EQ(m_->tokens_processed.Value(), 1000);
  EXPECT_EQ(Gpu(m_->gpu_memory_used_bytes, "0"), 3e9);
  EXPECT_EQ(Gpu(m_->gpu_memory_peak_bytes, "0"), 4e9);  // The engine's own high-water mark.

  // A second job on the same GPU: use adds up, the peak of the busy period stays.
  recorder_.JobStarted("b", 0);
  recorder_.JobLayerDone("b", Layer(1.0, 500, 1'500'000'000, 1'500'000'000));
  EXPECT_EQ(Gpu(m_->gpu_memory_used_bytes, "0"), 4.5e9);
  EXPECT_EQ(Gpu(m_->gpu_memory_peak_bytes, "0"), 4.5e9);
  recorder_.JobProgress("b", 0.1);
  recorder_.Collect();
  EXPECT_DOUBLE_EQ(m_->job_progress_ratio.Value(), 0.3);  // The mean of 0.5 and 0.1.

  recorder_.JobFinished("a", v1::JOB_STATE_SUCCEEDED);
  recorder_.Collect();
  EXPECT_EQ(Finished("succeeded"), 1);
  EXPECT_EQ(m_->jobs_running.Value(), 1);
  EXPECT_EQ(Gpu(m_->gpu_memory_used_bytes, "0"), 1.5e9);  // Only b's engine holds memory now.

  recorder_.JobForgotten("b");  // Taken away by the server: not counted as finished here.
  recorder_.Collect();
  EXPECT_EQ(Finished("succeeded") + Finished("failed") + Finished("cancelled"), 1);
  EXPECT_EQ(m_->jobs_running.Value(), 0);
  EXPECT_EQ(m_->job_progress_ratio.Value(), 0);
  EXPECT_EQ(Gpu(m_->gpu_memory_used_bytes, "0"), 0);
  EXPECT_EQ(Gpu(m_->gpu_memory_peak_bytes, "0"), 4.5e9);  // Kept until the GPU is busy again.

  recorder_.JobStarted("c", 0);
  EXPECT_EQ(Gpu(m_->gpu_memory_peak_bytes, "0"), 0);
  recorder_.JobFinished("c", v1::JOB_STATE_FAILED);
  EXPECT_EQ(Finished("failed"), 1);
  EXPECT_EQ(Gpu(m_->gpu_memory_peak_bytes, "1"), 0);  // The other GPU was never touched.
}

TEST_F(WorkerMetricsRecorderTest, CpuJobsCountLayersButNoGpuMemory) {
  recorder_.JobStarted("cpu-job", -1);
  recorder_.JobLayerDone("cpu-job", Layer(0.5, 256));
  recorder_.JobFinished("cpu-job", v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(m_->tokens_processed.Value(), 256);
  EXPECT_EQ(Finished("cancelled"), 1);
  EXPECT_EQ(registry_.Serialize().find("gpu=\"-1\""), std::string::npos);
}

}  // namespace
}  // namespace quantd::worker
