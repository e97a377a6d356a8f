// JobManager without gRPC: validation, idempotency, the state machine driven by a scripted worker,
// leases, requeues, adoption after a restart, watchers, and the job and worker metrics.
#include "job_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/str_format.h"
#include "store/memory_job_store.h"

namespace quantd::server {
namespace {

namespace fs = std::filesystem;

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("quantd-manager-test-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    std::ofstream(root_ / "model" / "config.json")
        << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,)"
        << R"( "num_hidden_layers": 2, "vocab_size": 100, "intermediate_size": 128,)"
        << R"( "num_attention_heads": 4})";
    std::ofstream(root_ / "calib.jsonl") << "{\"text\": \"hello\"}\n";
    options_.paths.allowed_roots = {root_.string()};
    options_.lease_duration = absl::Milliseconds(300);
    options_.max_attempts = 2;
    Restart();
  }
  void TearDown() override {
    if (manager_) manager_->Stop();
    fs::remove_all(root_);
  }
  // A new manager over the same store, as after a server restart.
  void Restart() {
    if (manager_) manager_->Stop();
    manager_ = std::make_unique<JobManager>(&store_, options_, *metrics_);
    ASSERT_TRUE(manager_->Recover().ok());
    manager_->Start();
  }
  v1::SubmitJobRequest Request(const std::string& out = "out") {
    v1::SubmitJobRequest request;
    request.mutable_spec()->set_model_dir((root_ / "model").string());
    request.mutable_spec()->set_output_dir((root_ / out).string());
    request.mutable_spec()->set_calib_jsonl((root_ / "calib.jsonl").string());
    return request;
  }
  v1::Job Submit(const std::string& out = "out") {
    auto job = manager_->Submit(Request(out));
    EXPECT_TRUE(job.ok()) << job.status();
    return *job;
  }
  WorkerSession Connect(const std::string& id, std::vector<v1::RunningJob> running = {},
                        v1::ServerHello* reply_out = nullptr, const std::string& principal = "") {
    v1::WorkerHello hello;
    hello.set_worker_id(id);
    hello.set_capacity(1);
    for (auto& r : running) *hello.add_running_jobs() = r;
    v1::ServerHello reply;
    absl::StatusOr<WorkerSession> session = manager_->ConnectWorker(hello, &reply, principal);
    EXPECT_TRUE(session.ok()) << session.status();
    if (reply_out) *reply_out = reply;
    return session.ok() ? *session : WorkerSession{};
  }
  WorkerSession ConnectHello(const v1::WorkerHello& hello) {
    v1::ServerHello reply;
    absl::StatusOr<WorkerSession> session = manager_->ConnectWorker(hello, &reply);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *session : WorkerSession{};
  }
  // A worker with one GPU of `gpu_bytes`.
  WorkerSession ConnectGpu(const std::string& id, int64_t gpu_bytes) {
    v1::WorkerHello hello;
    hello.set_worker_id(id);
    hello.set_capacity(1);
    hello.add_gpus()->set_memory_bytes(gpu_bytes);
    return ConnectHello(hello);
  }
  // A worker with `gpus` GPUs of 80 GiB that runs one job on all of them (as quantd-worker does).
  WorkerSession ConnectGpus(const std::string& id, int gpus) {
    v1::WorkerHello hello;
    hello.set_worker_id(id);
    hello.set_capacity(1);
    hello.set_max_job_gpus(gpus);
    for (int i = 0; i < gpus; ++i) {
      v1::Gpu* gpu = hello.add_gpus();
      gpu->set_index(i);
      gpu->set_memory_bytes(int64_t{80} << 30);
    }
    return ConnectHello(hello);
  }
  v1::Job SubmitGpus(const std::string& out, int gpus) {
    v1::SubmitJobRequest request = Request(out);
    request.mutable_spec()->set_gpus(gpus);
    auto job = manager_->Submit(request);
    EXPECT_TRUE(job.ok()) << job.status();
    return *job;
  }
  // The job once the scheduler has given it `reason`.
  v1::Job WaitForReason(const std::string& name, v1::QueueReason reason) {
    v1::Job job;
    for (int i = 0; i < 200; ++i) {
      job = *manager_->Get(name);
      if (job.queue_reason() == reason) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(v1::QueueReason_Name(job.queue_reason()), v1::QueueReason_Name(reason));
    return job;
  }
  // A model directory holding only a real model's config.json (tests/data/configs).
  std::string ModelOf(const std::string& config) {
    const fs::path dir = root_ / config;
    fs::create_directories(dir);
    fs::copy_file(fs::path(QUANTD_SOURCE_DIR) / "tests/data/configs" / config, dir / "config.json");
    return dir.string();
  }
  // Next message for the worker, waiting for the scheduler.
  v1::ServerMessage Next(const WorkerSession& session) {
    std::optional<v1::ServerMessage> m = session.outbox->Pop();
    EXPECT_TRUE(m.has_value());
    return m.value_or(v1::ServerMessage());
  }
  v1::JobState StateOf(const std::string& name) { return manager_->Get(name)->state(); }
  void WaitFor(const std::string& name, v1::JobState state) {
    for (int i = 0; i < 200 && StateOf(name) != state; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(v1::JobState_Name(StateOf(name)), v1::JobState_Name(state));
  }
  std::vector<v1::JobEvent> Events(const std::string& name) {
    std::vector<v1::JobEvent> events;
    EXPECT_TRUE(manager_
                    ->Watch(
                        name, 0,
                        [&](const v1::JobEvent& e) {
                          events.push_back(e);
                          return true;
                        },
                        [] { return false; })
                    .ok());
    return events;
  }
  static v1::WorkerMessage Report(const std::string& id, int attempt, int number) {
    v1::WorkerMessage m;
    m.mutable_report()->set_job_id(id);
    m.mutable_report()->set_attempt(attempt);
    m.mutable_report()->set_report_number(number);
    m.mutable_report()->mutable_log()->set_message("r" + std::to_string(number));
    return m;
  }
  static v1::WorkerMessage Finished(const std::string& id, int attempt, v1::JobState state) {
    v1::WorkerMessage m;
    m.mutable_job_finished()->set_job_id(id);
    m.mutable_job_finished()->set_attempt(attempt);
    m.mutable_job_finished()->set_state(state);
    return m;
  }

  fs::path root_;
  JobManagerOptions options_;
  metrics::Registry registry_;
  std::unique_ptr<metrics::ServerMetrics> metrics_ = *metrics::ServerMetrics::Create(registry_);
  MemoryJobStore store_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(JobManagerTest, SubmitFillsDefaultsAndStoresAQueuedEvent) {
  v1::Job job = Submit();
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.spec().group_size(), 128);
  EXPECT_EQ(job.spec().num_calib(), 8192);
  EXPECT_EQ(job.spec().modules_to_not_convert().names(0), "lm_head");
  // The engine's memory plan for this config and calibration file: the layer as config.json gives
  // it (no dtype: float32, 4 bytes; kv heads default to the heads, head_dim to hidden / heads) and
  // at most bytes / 2 + 256 chat-wrapped tokens a text of the 18-byte file for each of the 8192
  // texts, in blocks of 2048: 1024 blocks. Queued, the estimate is the plan with every token
  // resident; the smallest GPU it fits is the plan's own boundary.
  const memory_plan::LayerGeometry geometry{64, 128, 4, 4, 16, 4};
  EXPECT_EQ(job.estimated_gpu_memory_bytes(),
            static_cast<int64_t>(memory_plan::PlanRun(geometry, 1024, 2048, 1e18).planned_bytes));
  EXPECT_EQ(job.min_gpu_memory_bytes(), memory_plan::SmallestGpuBytes(geometry, 1024, 2048));
  EXPECT_EQ(job.last_event_sequence(), 1);
}

TEST_F(JobManagerTest, InvalidSpecsNameTheField) {
  struct Case {
    std::function<void(v1::JobSpec*)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](v1::JobSpec* s) { s->clear_model_dir(); }, "spec.model_dir"},
      {[](v1::JobSpec* s) { s->set_model_dir("relative/path"); }, "spec.model_dir"},
      {[](v1::JobSpec* s) { s->set_model_dir("/etc"); }, "spec.model_dir"},  // Outside roots.
      {[this](v1::JobSpec* s) { s->set_model_dir(root_.string()); },
       "spec.model_dir"},  // No config.
      {[this](v1::JobSpec* s) { s->set_calib_jsonl((root_ / "nope.jsonl").string()); },
       "spec.calib_jsonl"},
      {[](v1::JobSpec* s) { s->set_group_size(96); }, "spec.group_size"},
      {[](v1::JobSpec* s) { s->set_num_calib(0); }, "spec.num_calib"},
      {[](v1::JobSpec* s) { s->set_max_seq_len(8); }, "spec.max_seq_len"},
      {[](v1::JobSpec* s) { s->set_bits(8); }, "spec.bits"},
      {[](v1::JobSpec* s) { s->set_priority(5000); }, "spec.priority"},
      {[](v1::JobSpec* s) { s->set_gpus(0); }, "spec.gpus"},
      {[](v1::JobSpec* s) { s->set_gpus(17); }, "spec.gpus"},
      {[](v1::JobSpec* s) { (*s->mutable_labels())["Bad Key"] = "x"; }, "spec.labels"},
      {[this](v1::JobSpec* s) { s->set_output_dir((root_ / "model").string()); },
       "spec.output_dir"},
  };
  for (const Case& c : cases) {
    v1::SubmitJobRequest request = Request();
    c.mutate(request.mutable_spec());
    auto job = manager_->Submit(request);
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(job.status().message().find(c.field), std::string::npos) << job.status();
  }
  EXPECT_TRUE(manager_->List({})->jobs().empty());  // Nothing rejected was stored.
}

// A model the engine does not support is refused at submit time with the engine's message (the
// supported list, or why a multimodal checkpoint is refused), so it never reaches a worker; a
// config without "architectures" is accepted through its model_type.
TEST_F(JobManagerTest, UnsupportedModelsAreRefusedAtSubmit) {
  const fs::path other = root_ / "other";
  fs::create_directories(other);
  auto submit = [&](const std::string& config) {
    std::ofstream(other / "config.json") << config;
    v1::SubmitJobRequest request = Request();
    request.mutable_spec()->set_model_dir(other.string());
    request.mutable_spec()->set_output_dir((root_ / "other-out").string());
    return manager_->Submit(request);
  };
  const std::string geometry =
      R"("hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100, "intermediate_size": 128,)"
      R"( "num_attention_heads": 4)";
  auto job = submit(R"({"architectures": ["GPT2LMHeadModel"], )" + geometry + "}");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(job.status().message()), ::testing::HasSubstr("spec.model_dir"));
  EXPECT_THAT(std::string(job.status().message()), ::testing::HasSubstr("GPT2LMHeadModel"));
  EXPECT_THAT(std::string(job.status().message()), ::testing::HasSubstr("Gemma2ForCausalLM"));
  job = submit(R"({"architectures": ["Gemma3ForConditionalGeneration"],)"
               R"( "text_config": {"model_type": "gemma3_text"}})");
  EXPECT_THAT(std::string(job.status().message()), ::testing::HasSubstr("multimodal"));
  EXPECT_TRUE(manager_->List({})->jobs().empty());
  job = submit(R"({"model_type": "mistral", )" + geometry + "}");
  EXPECT_TRUE(job.ok()) << job.status();
}

TEST_F(JobManagerTest, RequestIdMakesSubmitIdempotent) {
  v1::SubmitJobRequest request = Request();
  request.set_request_id("req-7");
  auto first = manager_->Submit(request);
  auto again = manager_->Submit(request);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->job_id(), again->job_id());
  request.mutable_spec()->set_group_size(64);
  EXPECT_EQ(manager_->Submit(request).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(manager_->List({})->jobs_size(), 1);
}

TEST_F(JobManagerTest, TenantsSeeOnlyTheirJobsAndQueueWithinTheirQuota) {
  options_.paths.allowed_roots = {root_.string() + "/{tenant}"};
  Restart();
  fs::create_directories(root_ / "search" / "model");
  fs::copy_file(root_ / "model" / "config.json", root_ / "search" / "model" / "config.json");
  v1::SubmitJobRequest request;
  request.mutable_spec()->set_model_dir((root_ / "search" / "model").string());
  request.mutable_spec()->set_calib_jsonl((root_ / "search" / "model" / "config.json").string());
  const SubmitContext search{"search", "alice", 2};
  for (const char* out : {"o1", "o2"}) {
    request.mutable_spec()->set_output_dir((root_ / "search" / out).string());
    auto job = manager_->Submit(request, search);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->tenant(), "search");
    EXPECT_EQ(job->owner(), "alice");
  }
  request.mutable_spec()->set_output_dir((root_ / "search" / "o3").string());
  auto over = manager_->Submit(request, search);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("--max-queued-jobs-per-tenant"), std::string::npos);
  // Another tenant's roots do not hold search's files.
  auto other = manager_->Submit(request, SubmitContext{"ads", "bob", 2});
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("allowed roots"), std::string::npos) << other.status();
  v1::ListJobsRequest list;
  list.set_tenant("ads");
  EXPECT_EQ(manager_->List(list)->jobs_size(), 0);
  list.set_tenant("search");
  EXPECT_EQ(manager_->List(list)->jobs_size(), 2);
  // A worker gets the job's own roots.
  WorkerSession w = Connect("w1");
  v1::ServerMessage assignment = Next(w);
  ASSERT_EQ(assignment.assignment().allowed_roots_size(), 1);
  EXPECT_EQ(assignment.assignment().allowed_roots(0), root_.string() + "/search");
}

TEST_F(JobManagerTest, ARequestIdOfAnotherTenantIsNotLeaked) {
  v1::SubmitJobRequest request = Request();
  request.set_request_id("shared-id");
  auto first = manager_->Submit(request, SubmitContext{"a", "alice", 0});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = manager_->Submit(request, SubmitContext{"b", "bob", 0});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(second.status().message().find(first->name()), std::string::npos);
}

TEST_F(JobManagerTest, AWorkerIdIsBoundToTheCredentialThatConnectedIt) {
  v1::Job job = Submit();
  WorkerSession w = Connect("w1", {}, nullptr, "gpu-node-1");
  ASSERT_TRUE(Next(w).has_assignment());
  EXPECT_EQ(manager_->Get(job.name())->worker_principal(), "gpu-node-1");
  v1::WorkerHello hello;
  hello.set_worker_id("w1");
  v1::ServerHello reply;
  auto forged = manager_->ConnectWorker(hello, &reply, "gpu-node-2");
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kPermissionDenied);
  // The forger's own session cannot report on the job either.
  WorkerSession other = Connect("w2", {}, nullptr, "gpu-node-2");
  manager_->HandleWorkerMessage(other, Finished(job.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  EXPECT_EQ(StateOf(job.name()), v1::JOB_STATE_ASSIGNED);
  // Its own worker finishes it; an artifact outside output_dir is refused.
  v1::WorkerMessage finished = Finished(job.job_id(), 1, v1::JOB_STATE_SUCCEEDED);
  finished.mutable_job_finished()->add_artifacts()->set_path("/tmp/forged/model.safetensors");
  manager_->HandleWorkerMessage(w, finished);
  auto done = manager_->Get(job.name());
  EXPECT_EQ(done->state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(done->error().message().find("outside output_dir"), std::string::npos);
  EXPECT_EQ(done->artifacts_size(), 0);
}

TEST_F(JobManagerTest, RunsOnAWorkerAndRecordsEveryStepOnce) {
  v1::Job job = Submit();
  WorkerSession w = Connect("w1");
  v1::ServerMessage assignment = Next(w);
  ASSERT_TRUE(assignment.has_assignment());
  EXPECT_EQ(assignment.assignment().job_id(), job.job_id());
  EXPECT_EQ(StateOf(job.name()), v1::JOB_STATE_ASSIGNED);
  v1::WorkerMessage started;
  started.mutable_job_started()->set_job_id(job.job_id());
  started.mutable_job_started()->set_attempt(1);
  manager_->HandleWorkerMessage(w, started);
  manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, 1));
  manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, 2));
  manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, 2));  // Resent: dropped.
  manager_->HandleWorkerMessage(w, Report(job.job_id(), 2, 3));  // Wrong attempt: dropped.
  manager_->HandleWorkerMessage(w, Finished(job.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  std::vector<v1::JobEvent> events = Events(job.name());
  std::vector<std::string> kinds;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), static_cast<int64_t>(i) + 1);
    kinds.push_back(events[i].has_state_change()
                        ? v1::JobState_Name(events[i].state_change().state())
                        : events[i].log().message());
  }
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"JOB_STATE_QUEUED", "JOB_STATE_ASSIGNED", "JOB_STATE_RUNNING",
                                      "r1", "r2", "JOB_STATE_SUCCEEDED"}));
}

// The engine's quality report travels with JobFinished: the Job keeps it, the terminal event
// carries it, and the perplexity increase goes into its histogram. A job failed by its
// perplexity threshold keeps its figures too.
TEST_F(JobManagerTest, QualityReportReachesTheJobItsTerminalEventAndTheHistogram) {
  const metrics::ServerMetrics& m = *metrics_;
  for (v1::JobState state : {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED}) {
    v1::Job job = Submit(state == v1::JOB_STATE_SUCCEEDED ? "ok" : "bad");
    WorkerSession w = Connect(state == v1::JOB_STATE_SUCCEEDED ? "w1" : "w2");
    ASSERT_TRUE(Next(w).has_assignment());
    v1::WorkerMessage finished = Finished(job.job_id(), 1, state);
    v1::JobQuality* q = finished.mutable_job_finished()->mutable_quality();
    q->set_source("held_out");
    q->set_tokens_scored(4096);
    q->set_perplexity_float(10.0);
    q->set_perplexity_quantized(10.2);
    q->set_perplexity_increase_percent(2.0);
    q->add_vllm_tensor_parallel_sizes(1);
    q->add_vllm_kernels("Machete (sm90)");
    if (state == v1::JOB_STATE_FAILED) {
      finished.mutable_job_finished()->mutable_error()->set_code(9);
      finished.mutable_job_finished()->mutable_error()->set_message("quality check failed");
    }
    manager_->HandleWorkerMessage(w, finished);
    const v1::Job done = *manager_->Get(job.name());
    EXPECT_EQ(done.state(), state);
    EXPECT_EQ(done.quality().perplexity_quantized(), 10.2);
    EXPECT_EQ(done.quality().vllm_kernels(0), "Machete (sm90)");
    const std::vector<v1::JobEvent> events = Events(job.name());
    ASSERT_TRUE(events.back().has_state_change());
    EXPECT_EQ(events.back().state_change().state(), state);
    EXPECT_EQ(events.back().state_change().quality().tokens_scored(), 4096);
    manager_->DisconnectWorker(w);
  }
  EXPECT_EQ(m.job_perplexity_increase_percent.Collect().count, 2u);
}

// The formats' rules at submit, with the same messages as quantize-awq (format_options.h), and
// the effective scale dtype filled in.
TEST_F(JobManagerTest, SubmitRefusesDisallowedFormatCombinationsWithTheRule) {
  const struct {
    std::function<void(v1::JobSpec*)> mutate;
    const char* says;
  } cases[] = {
      {[](v1::JobSpec* s) { s->set_zero_point(false); },
       "spec.zero_point: false (symmetric) needs spec.layout compressed-tensors"},
      {[](v1::JobSpec* s) { s->set_group_size(-1); },
       "spec.group_size: -1 (per-channel) needs spec.layout compressed-tensors"},
      {[](v1::JobSpec* s) { s->set_group_size(96); }, "spec.group_size: 96 is not one of"},
      {[](v1::JobSpec* s) { s->set_scale_dtype(v1::OUTPUT_DTYPE_BFLOAT16); },
       "spec.scale_dtype: bfloat16 needs spec.layout compressed-tensors"},
      {[](v1::JobSpec* s) {
         s->set_layout(v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS);
         s->set_scale_dtype(v1::OUTPUT_DTYPE_BFLOAT16);
       },
       "spec.scale_dtype: bfloat16 with spec.output_dtype float16"},
      {[](v1::JobSpec* s) { s->set_bits(8); }, "spec.bits: 8 is not 4"},
      {[](v1::JobSpec* s) { s->set_max_perplexity_increase_percent(-2); },
       "spec.max_perplexity_increase_percent: -2 is not a percentage"},
      {[](v1::JobSpec* s) { s->mutable_modules_to_not_convert()->add_names("re:[a-"); },
       "the regex does not compile"},
  };
  for (const auto& c : cases) {
    v1::SubmitJobRequest request = Request();
    c.mutate(request.mutable_spec());
    absl::StatusOr<v1::Job> job = manager_->Submit(request);
    ASSERT_FALSE(job.ok()) << c.says;
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(job.status().message()), ::testing::HasSubstr(c.says));
  }
  {  // a module pattern is echoed bounded (Quoted), however long
    v1::SubmitJobRequest request = Request();
    request.mutable_spec()->mutable_modules_to_not_convert()->add_names(std::string(10000, 'm') +
                                                                        ",x");
    absl::StatusOr<v1::Job> job = manager_->Submit(request);
    ASSERT_FALSE(job.ok());
    EXPECT_THAT(std::string(job.status().message()), ::testing::HasSubstr("(10002 bytes)"));
    EXPECT_LT(job.status().message().size(), 400u);
  }
  {  // compressed-tensors' scales follow the output dtype the engine's rule gives this model
    v1::SubmitJobRequest request = Request("auto");
    request.mutable_spec()->set_layout(v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS);
    absl::StatusOr<v1::Job> job = manager_->Submit(request);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->spec().output_dtype(), v1::OUTPUT_DTYPE_UNSPECIFIED);
    EXPECT_EQ(job->spec().scale_dtype(), v1::OUTPUT_DTYPE_FLOAT16);
  }
  v1::SubmitJobRequest ct = Request("ct");
  ct.mutable_spec()->set_layout(v1::WEIGHT_LAYOUT_COMPRESSED_TENSORS);
  ct.mutable_spec()->set_zero_point(false);
  ct.mutable_spec()->set_group_size(-1);
  ct.mutable_spec()->set_output_dtype(v1::OUTPUT_DTYPE_BFLOAT16);
  absl::StatusOr<v1::Job> job = manager_->Submit(ct);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->spec().scale_dtype(), v1::OUTPUT_DTYPE_BFLOAT16);
  EXPECT_EQ(Submit("gemm").spec().scale_dtype(), v1::OUTPUT_DTYPE_FLOAT16);
}

TEST_F(JobManagerTest, CancelQueuedAtOnceRunningThroughTheWorker) {
  v1::Job queued = Submit("a");
  auto cancelled = manager_->Cancel(queued.name());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(manager_->Cancel(queued.name()).ok());  // Again: unchanged.

  v1::Job running = Submit("b");
  WorkerSession w = Connect("w1");
  ASSERT_TRUE(Next(w).has_assignment());
  EXPECT_EQ(manager_->Cancel(running.name())->state(), v1::JOB_STATE_CANCELLING);
  v1::ServerMessage cancel = Next(w);
  ASSERT_TRUE(cancel.has_cancel());
  EXPECT_EQ(cancel.cancel().job_id(), running.job_id());
  manager_->HandleWorkerMessage(w, Finished(running.job_id(), 1, v1::JOB_STATE_CANCELLED));
  EXPECT_EQ(StateOf(running.name()), v1::JOB_STATE_CANCELLED);

  v1::Job done = Submit("c");
  ASSERT_TRUE(Next(w).has_assignment());
  manager_->HandleWorkerMessage(w, Finished(done.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  EXPECT_EQ(manager_->Cancel(done.name()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager_->Cancel("jobs/unknown").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, LostWorkerRequeuesThenFailsAfterMaxAttempts) {
  v1::Job job = Submit();
  WorkerSession w1 = Connect("w1");
  ASSERT_TRUE(Next(w1).has_assignment());
  manager_->DisconnectWorker(w1);
  WaitFor(job.name(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(manager_->Get(job.name())->attempt(), 2);

  WorkerSession w2 = Connect("w2");
  v1::ServerMessage second = Next(w2);
  ASSERT_TRUE(second.has_assignment());
  EXPECT_EQ(second.assignment().attempt(), 2);
  manager_->DisconnectWorker(w2);
  WaitFor(job.name(), v1::JOB_STATE_FAILED);
  v1::Job failed = *manager_->Get(job.name());
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_NE(failed.error().message().find("lease expired"), std::string::npos);
}

// Heartbeat.gpu_memory_used_bytes (quantd-worker reads it through NVML): the server keeps each
// session's latest and exports the used and free memory of the GPUs that report it.
TEST_F(JobManagerTest, HeartbeatsReportGpuMemoryInUse) {
  metrics::ServerMetrics& m = *metrics_;
  v1::WorkerHello hello;
  hello.set_worker_id("gpu-worker");
  for (int i = 0; i < 2; ++i) {
    v1::Gpu* gpu = hello.add_gpus();
    gpu->set_index(i);
    gpu->set_memory_bytes(int64_t{80} << 30);
  }
  v1::ServerHello reply;
  absl::StatusOr<WorkerSession> connected = manager_->ConnectWorker(hello, &reply);
  ASSERT_TRUE(connected.ok()) << connected.status();
  WorkerSession session = *connected;
  manager_->CollectMetrics();
  EXPECT_EQ(m.gpu_memory_used.Value(), 0);  // Nothing reported yet.
  EXPECT_EQ(m.gpu_memory_free.Value(), 0);

  v1::WorkerMessage beat;
  (*beat.mutable_heartbeat()->mutable_gpu_memory_used_bytes())[0] = int64_t{30} << 30;
  (*beat.mutable_heartbeat()->mutable_gpu_memory_used_bytes())[1] = int64_t{1} << 30;
  manager_->HandleWorkerMessage(session, beat);
  manager_->CollectMetrics();
  EXPECT_EQ(m.gpu_memory_used.Value(), static_cast<double>(int64_t{31} << 30));
  EXPECT_EQ(m.gpu_memory_free.Value(), static_cast<double>(int64_t{129} << 30));

  // The latest heartbeat replaces the previous one; a new session starts unknown again.
  (*beat.mutable_heartbeat()->mutable_gpu_memory_used_bytes())[0] = int64_t{10} << 30;
  manager_->HandleWorkerMessage(session, beat);
  manager_->CollectMetrics();
  EXPECT_EQ(m.gpu_memory_used.Value(), static_cast<double>(int64_t{11} << 30));
  absl::StatusOr<WorkerSession> again = manager_->ConnectWorker(hello, &reply);
  ASSERT_TRUE(again.ok()) << again.status();
  manager_->CollectMetrics();
  EXPECT_EQ(m.gpu_memory_used.Value(), 0);
  manager_->DisconnectWorker(*again);
  manager_->HandleWorkerMessage(session, beat);  // The replaced session is ignored.
  manager_->CollectMetrics();
  EXPECT_EQ(m.gpu_memory_used.Value(), 0);
}

TEST_F(JobManagerTest, AnAttemptLostOnItsWorkerIsRequeuedThenFailsAfterMaxAttempts) {
  v1::Job job = Submit();
  WorkerSession w1 = Connect("w1");
  ASSERT_TRUE(Next(w1).has_assignment());
  v1::WorkerMessage lost = Finished(job.job_id(), 1, v1::JOB_STATE_FAILED);
  lost.mutable_job_finished()->set_requeue(true);
  lost.mutable_job_finished()->mutable_error()->set_message("the engine was killed by signal 9");
  manager_->HandleWorkerMessage(w1, lost);
  // Requeued (the same worker still has a slot, so it gets attempt 2 at once).
  v1::ServerMessage second = Next(w1);
  ASSERT_TRUE(second.has_assignment());
  EXPECT_EQ(second.assignment().attempt(), 2);
  lost.mutable_job_finished()->set_attempt(2);
  manager_->HandleWorkerMessage(w1, lost);
  WaitFor(job.name(), v1::JOB_STATE_FAILED);
  EXPECT_NE(manager_->Get(job.name())->error().message().find("gave up after 2 attempts"),
            std::string::npos);
  bool said = false;  // the requeue says why the first attempt ended
  for (const v1::JobEvent& e : Events(job.name())) {
    said |= e.has_state_change() && e.state_change().state() == v1::JOB_STATE_QUEUED &&
            e.state_change().error().message().find("signal 9") != std::string::npos;
  }
  EXPECT_TRUE(said);
}

TEST_F(JobManagerTest, TheSeedScaleCalibrationIsPlacedOnAGpuByTheEnginesMemoryPlan) {
  // Qwen2.5-0.5B, an 8 MB calibration file, 8192 texts in blocks of 2048 tokens (the defaults):
  // the old estimate (every token's activations at once, about 240 GB) left it queued forever.
  const fs::path calib = root_ / "calib_8192.jsonl";
  {
    std::ofstream out(calib);
    for (int i = 0; i < 8192; ++i) out << "{\"text\": \"" << std::string(1000, 'a') << "\"}\n";
  }
  v1::SubmitJobRequest request = Request();
  request.mutable_spec()->set_model_dir(ModelOf("qwen2.5-0.5b-instruct.config.json"));
  request.mutable_spec()->set_calib_jsonl(calib.string());
  absl::StatusOr<v1::Job> job = manager_->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  WorkerSession gpu = ConnectGpu("h100", int64_t{80} << 30);
  v1::ServerMessage m = Next(gpu);
  ASSERT_TRUE(m.has_assignment());
  EXPECT_EQ(m.assignment().gpu_index(), 0);
  v1::Job placed = *manager_->Get(job->name());
  EXPECT_LE(placed.estimated_gpu_memory_bytes(), int64_t{80} << 30);  // what it reserved there
  EXPECT_EQ(placed.queue_reason(), v1::QUEUE_REASON_UNSPECIFIED);
}

TEST_F(JobManagerTest, AJobNoGpuCanHoldSaysWhyThenFailsNamingTheGpuItNeeds) {
  options_.unplaceable_timeout = absl::Milliseconds(300);
  Restart();
  v1::SubmitJobRequest request = Request();
  request.mutable_spec()->set_model_dir(ModelOf("qwen2.5-7b-instruct.config.json"));
  absl::StatusOr<v1::Job> job = manager_->Submit(request);
  ASSERT_TRUE(job.ok()) << job.status();
  v1::Job waiting;
  for (int i = 0; i < 100; ++i) {  // no worker yet
    waiting = *manager_->Get(job->name());
    if (waiting.queue_reason() != v1::QUEUE_REASON_UNSPECIFIED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(waiting.queue_reason(), v1::QUEUE_REASON_NO_WORKER);
  WorkerSession small = ConnectGpu("small", int64_t{4} << 30);
  manager_->HandleWorkerMessage(small, [] {
    v1::WorkerMessage beat;
    (*beat.mutable_heartbeat()->mutable_gpu_memory_used_bytes())[0] = int64_t{1} << 30;
    return beat;
  }());
  for (int i = 0; i < 100; ++i) {
    waiting = *manager_->Get(job->name());
    if (waiting.queue_reason() == v1::QUEUE_REASON_GPU_TOO_SMALL) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(waiting.queue_reason(), v1::QUEUE_REASON_GPU_TOO_SMALL);
  EXPECT_NE(waiting.queue_message().find("the largest connected GPU has 4.0 GiB"),
            std::string::npos)
      << waiting.queue_message();
  manager_->CollectMetrics();
  EXPECT_EQ((*metrics_->queued_jobs.Add({{"reason", "gpu_too_small"}}))->Value(), 1);
  EXPECT_EQ(metrics_->gpu_memory_used.Value(), double{1 << 30});  // the heartbeat's
  WaitFor(job->name(), v1::JOB_STATE_FAILED);
  v1::Job failed = *manager_->Get(job->name());
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  const std::string needs =
      absl::StrFormat("%.1f GiB", static_cast<double>(failed.min_gpu_memory_bytes()) / (1 << 30));
  EXPECT_NE(failed.error().message().find("needs a GPU of at least " + needs), std::string::npos)
      << failed.error().message();
  manager_->CollectMetrics();
  EXPECT_EQ((*metrics_->queued_jobs.Add({{"reason", "gpu_too_small"}}))->Value(), 0);
}

TEST_F(JobManagerTest, MetricsFollowJobsAndWorkers) {
  metrics::ServerMetrics& m = *metrics_;
  v1::Job job = Submit("a");
  v1::Job cancelled = Submit("b");
  ASSERT_TRUE(manager_->Cancel(cancelled.name()).ok());
  manager_->CollectMetrics();
  EXPECT_EQ(m.jobs_submitted.Value(), 2);
  EXPECT_EQ(m.jobs_cancelled.Value(), 1);
  EXPECT_EQ(m.jobs_queued.Value(), 1);
  EXPECT_EQ(m.workers_idle.Value() + m.workers_busy.Value(), 0);

  WorkerSession w = Connect("w1");  // A CPU-only worker with one slot.
  ASSERT_TRUE(Next(w).has_assignment());
  manager_->CollectMetrics();
  EXPECT_EQ(m.jobs_queued.Value(), 0);
  EXPECT_EQ(m.jobs_running.Value(), 1);
  EXPECT_EQ(m.workers_busy.Value(), 1);
  EXPECT_EQ(m.gpus_busy.Value(), 1);
  EXPECT_EQ(m.gpus_free.Value(), 0);
  EXPECT_EQ(m.job_attempts.Value(), 1);
  EXPECT_EQ(m.job_queue_wait_seconds.Collect().count, 1u);

  // The worker is lost: the job waits again, is placed on the next worker, and succeeds there.
  manager_->DisconnectWorker(w);
  WaitFor(job.name(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(m.job_requeues.Value(), 1);
  WorkerSession w2 = Connect("w2");
  ASSERT_TRUE(Next(w2).has_assignment());
  EXPECT_EQ(m.job_attempts.Value(), 2);
  EXPECT_EQ(m.job_queue_wait_seconds.Collect().count, 2u);
  manager_->HandleWorkerMessage(w2, Finished(job.job_id(), 2, v1::JOB_STATE_SUCCEEDED));
  EXPECT_EQ(m.jobs_succeeded.Value(), 1);
  EXPECT_EQ(m.JobDuration(metrics::JobOutcome::kSucceeded).Collect().count, 1u);
  // Cancelled while queued: it never ran, so it has no duration.
  EXPECT_EQ(m.JobDuration(metrics::JobOutcome::kCancelled).Collect().count, 0u);
  manager_->CollectMetrics();
  EXPECT_EQ(m.jobs_running.Value(), 0);
  EXPECT_EQ(m.workers_idle.Value(), 1);  // w2; w1 is gone.
  EXPECT_EQ(m.gpus_free.Value(), 1);

  v1::Job watched = Submit("c");  // Unfinished, so its watcher stays until it goes away.
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    (void)manager_->Watch(
        watched.name(), 0, [](const v1::JobEvent&) { return true; }, [&] { return stop.load(); });
  });
  for (int i = 0; i < 100 && m.watchers.Value() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(m.watchers.Value(), 1);
  stop = true;
  watcher.join();
  EXPECT_EQ(m.watchers.Value(), 0);
}

TEST_F(JobManagerTest, AfterARestartTheReconnectingWorkerIsAdoptedNotRerun) {
  v1::Job job = Submit();
  WorkerSession w = Connect("w1");
  ASSERT_TRUE(Next(w).has_assignment());
  manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, 1));
  Restart();  // The server restarts; the worker keeps the job running.
  v1::RunningJob running;
  running.set_job_id(job.job_id());
  running.set_attempt(1);
  v1::ServerHello reply;
  WorkerSession again = Connect("w1", {running}, &reply);
  ASSERT_EQ(reply.adopted_jobs_size(), 1);
  EXPECT_EQ(reply.adopted_jobs(0).last_report_number(), 1);
  EXPECT_EQ(reply.stop_job_ids_size(), 0);
  manager_->HandleWorkerMessage(again, Report(job.job_id(), 1, 1));  // Resent; dropped.
  manager_->HandleWorkerMessage(again, Report(job.job_id(), 1, 2));
  manager_->HandleWorkerMessage(again, Finished(job.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  v1::Job done = *manager_->Get(job.name());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done.attempt(), 1);
  std::vector<std::string> logs;
  for (const auto& e : Events(job.name())) {
    if (e.has_log()) logs.push_back(e.log().message());
  }
  // The worker's two reports, and the server's own line about the adoption in between.
  EXPECT_EQ(logs, (std::vector<std::string>{
                      "r1", "quantd: adopted from workers/w1 after its reconnect", "r2"}));
}

TEST_F(JobManagerTest, AWorkerThatComesBackWithoutTheJobGetsItStopped) {
  v1::Job job = Submit();
  WorkerSession w = Connect("w1");
  ASSERT_TRUE(Next(w).has_assignment());
  ASSERT_TRUE(manager_->Cancel(job.name()).ok());
  manager_->DisconnectWorker(w);
  WaitFor(job.name(), v1::JOB_STATE_CANCELLED);  // Lease expired while CANCELLING.
  v1::RunningJob running;
  running.set_job_id(job.job_id());
  running.set_attempt(1);
  v1::ServerHello reply;
  Connect("w1", {running}, &reply);
  ASSERT_EQ(reply.stop_job_ids_size(), 1);
  EXPECT_EQ(reply.stop_job_ids(0), job.job_id());
}

TEST_F(JobManagerTest, LateWatcherGetsEverythingThenLiveEventsExactlyOnce) {
  v1::Job job = Submit();
  WorkerSession w = Connect("w1");
  ASSERT_TRUE(Next(w).has_assignment());
  for (int i = 1; i <= 300; ++i) manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, i));
  std::vector<int64_t> seen;
  std::thread watcher([&] {
    EXPECT_TRUE(manager_
                    ->Watch(
                        job.name(), 5,
                        [&](const v1::JobEvent& e) {
                          seen.push_back(e.sequence());
                          return true;
                        },
                        [] { return false; })
                    .ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 301; i <= 310; ++i) manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, i));
  manager_->HandleWorkerMessage(w, Finished(job.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  watcher.join();
  const int64_t last = manager_->Get(job.name())->last_event_sequence();
  ASSERT_EQ(static_cast<int64_t>(seen.size()), last - 5);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i) + 6);
}

TEST_F(JobManagerTest, SlowWatcherFallsBehindTheWindowReadsTheStoreAndDoesNotSlowTheJob) {
  options_.event_window = 4;  // Tiny, so that the slow watcher surely falls behind it.
  Restart();
  v1::Job job = Submit();
  WorkerSession w = Connect("w1");
  ASSERT_TRUE(Next(w).has_assignment());
  std::vector<int64_t> seen;
  std::atomic<bool> started{false};
  std::thread watcher([&] {
    EXPECT_TRUE(manager_
                    ->Watch(
                        job.name(), 0,
                        [&](const v1::JobEvent& e) {
                          started = true;
                          seen.push_back(e.sequence());
                          std::this_thread::sleep_for(
                              std::chrono::milliseconds(5));  // A slow client.
                          return true;
                        },
                        [] { return false; })
                    .ok());
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const absl::Time t0 = absl::Now();
  for (int i = 1; i <= 200; ++i) manager_->HandleWorkerMessage(w, Report(job.job_id(), 1, i));
  manager_->HandleWorkerMessage(w, Finished(job.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  const absl::Duration publish_time = absl::Now() - t0;
  watcher.join();
  // 200 events at 5 ms each take the watcher >= 1 s; the job did not wait for it.
  EXPECT_LT(publish_time, absl::Milliseconds(500));
  const int64_t last = manager_->Get(job.name())->last_event_sequence();
  ASSERT_EQ(static_cast<int64_t>(seen.size()), last);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i) + 1);
}

// ---- Jobs on several GPUs (JobSpec.gpus) ----

TEST_F(JobManagerTest, ATwoGpuJobWaitsForTwoFreeGpusSaysWhyAndIsToldWhichItGot) {
  v1::Job one = SubmitGpus("one", 1);
  EXPECT_EQ(one.spec().gpus(), 1);  // the default, filled in
  WorkerSession w = ConnectGpus("w", 2);
  v1::ServerMessage first = Next(w);
  ASSERT_TRUE(first.has_assignment());
  EXPECT_EQ(first.assignment().gpu_indices_size(), 1);

  v1::Job two = SubmitGpus("two", 2);
  // Queued while one GPU is taken; the reason says what it waits for.
  v1::Job waiting = WaitForReason(two.name(), v1::QUEUE_REASON_WAITING_FOR_CAPACITY);
  EXPECT_NE(waiting.queue_message().find("2 GPU slots of one worker"), std::string::npos)
      << waiting.queue_message();
  // Each GPU is planned for half the calibration (the 18-byte file's 1024 blocks split in two).
  const memory_plan::LayerGeometry geometry{64, 128, 4, 4, 16, 4};
  EXPECT_EQ(two.min_gpu_memory_bytes(), memory_plan::SmallestGpuBytes(geometry, 512, 2048));
  EXPECT_EQ(two.estimated_gpu_memory_bytes(),
            static_cast<int64_t>(memory_plan::PlanRun(geometry, 512, 2048, 1e18).planned_bytes));
  manager_->CollectMetrics();
  EXPECT_EQ((*metrics_->queued_jobs.Add({{"reason", "waiting_for_capacity"}}))->Value(), 1);

  manager_->HandleWorkerMessage(w, Finished(one.job_id(), 1, v1::JOB_STATE_SUCCEEDED));
  v1::ServerMessage second = Next(w);
  ASSERT_TRUE(second.has_assignment());
  EXPECT_EQ(second.assignment().job_id(), two.job_id());
  EXPECT_EQ(std::vector<int32_t>(second.assignment().gpu_indices().begin(),
                                 second.assignment().gpu_indices().end()),
            (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(second.assignment().spec().gpus(), 2);
  v1::Job placed = *manager_->Get(two.name());
  EXPECT_EQ(placed.gpu_indices_size(), 2);
  EXPECT_EQ(placed.queue_reason(), v1::QUEUE_REASON_UNSPECIFIED);
  manager_->CollectMetrics();
  EXPECT_EQ(metrics_->gpus_busy.Value(), 2);
  EXPECT_EQ(metrics_->gpus_free.Value(), 0);
}

TEST_F(JobManagerTest, AFourGpuWorkerRunsFourOneGpuJobsAtOnce) {
  std::vector<v1::Job> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(SubmitGpus("out" + std::to_string(i), 1));
  WorkerSession w = ConnectGpus("w", 4);
  std::set<int32_t> gpus;
  for (int i = 0; i < 4; ++i) {
    v1::ServerMessage m = Next(w);
    ASSERT_TRUE(m.has_assignment());
    gpus.insert(m.assignment().gpu_index());
  }
  EXPECT_EQ(gpus, (std::set<int32_t>{0, 1, 2, 3}));
  int assigned = 0;
  for (const v1::Job& job : jobs) assigned += StateOf(job.name()) == v1::JOB_STATE_ASSIGNED;
  EXPECT_EQ(assigned, 4);
  WaitForReason(jobs[4].name(), v1::QUEUE_REASON_WAITING_FOR_CAPACITY);
}

TEST_F(JobManagerTest, AJobForMoreGpusThanAnyWorkerHasSaysWhyThenFails) {
  options_.unplaceable_timeout = absl::Milliseconds(300);
  Restart();
  WorkerSession w = ConnectGpus("w", 2);
  v1::Job four = SubmitGpus("four", 4);
  v1::Job waiting = WaitForReason(four.name(), v1::QUEUE_REASON_TOO_FEW_GPUS);
  EXPECT_NE(waiting.queue_message().find("runs a job on 4 GPUs"), std::string::npos)
      << waiting.queue_message();
  EXPECT_NE(waiting.queue_message().find("gives one job is 2"), std::string::npos)
      << waiting.queue_message();
  manager_->CollectMetrics();
  EXPECT_EQ((*metrics_->queued_jobs.Add({{"reason", "too_few_gpus"}}))->Value(), 1);
  WaitFor(four.name(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(manager_->Get(four.name())->error().code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
}

}  // namespace
}  // namespace quantd::server
