// The v1 contract compiles into working client and server stubs: a real gRPC server built from the
// generated service base class answers a real client stub over loopback.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "quantd/v1/quantization_service.grpc.pb.h"
#include "quantd/v1/worker_service.grpc.pb.h"

namespace quantd::v1 {
namespace {

// Echoes the submitted spec back as a queued job, and streams three events for WatchJob.
class EchoQuantizationService final : public QuantizationService::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext*, const SubmitJobRequest* request,
                         Job* job) override {
    if (request->spec().model_dir().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "spec.model_dir: required");
    }
    job->set_job_id("j1");
    job->set_name("jobs/j1");
    job->set_state(JOB_STATE_QUEUED);
    job->set_request_id(request->request_id());
    *job->mutable_spec() = request->spec();
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext*, const WatchJobRequest* request,
                        grpc::ServerWriter<JobEvent>* writer) override {
    for (int64_t seq = request->after_sequence() + 1; seq <= 3; ++seq) {
      JobEvent event;
      event.set_job(request->name());
      event.set_sequence(seq);
      event.mutable_log()->set_message("event " + std::to_string(seq));
      writer->Write(event);
    }
    return grpc::Status::OK;
  }
};

class ContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    stub_ = QuantizationService::NewStub(channel);
  }
  void TearDown() override { server_->Shutdown(); }

  EchoQuantizationService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<QuantizationService::Stub> stub_;
};

TEST_F(ContractTest, SubmitRoundTripsTheSpecIncludingUnsetOptionals) {
  SubmitJobRequest request;
  request.set_request_id("req-1");
  request.mutable_spec()->set_model_dir("/models/qwen");
  request.mutable_spec()->set_system_prompt("");  // Explicitly empty: "no system message".
  request.mutable_spec()->mutable_modules_to_not_convert();  // Explicitly empty list.
  (*request.mutable_spec()->mutable_labels())["team"] = "search";

  grpc::ClientContext context;
  Job job;
  ASSERT_TRUE(stub_->SubmitJob(&context, request, &job).ok());
  EXPECT_EQ(job.name(), "jobs/j1");
  EXPECT_EQ(job.state(), JOB_STATE_QUEUED);
  EXPECT_EQ(job.request_id(), "req-1");
  // proto3 `optional` keeps "set to the zero value" apart from "unset".
  EXPECT_TRUE(job.spec().has_system_prompt());
  EXPECT_TRUE(job.spec().system_prompt().empty());
  EXPECT_FALSE(job.spec().has_num_calib());
  EXPECT_FALSE(job.spec().has_apply_chat_template());
  EXPECT_TRUE(job.spec().has_modules_to_not_convert());
  EXPECT_EQ(job.spec().modules_to_not_convert().names_size(), 0);
  EXPECT_EQ(job.spec().labels().at("team"), "search");
}

TEST_F(ContractTest, ErrorsCarryTheFieldName) {
  grpc::ClientContext context;
  Job job;
  grpc::Status status = stub_->SubmitJob(&context, SubmitJobRequest(), &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("spec.model_dir"), std::string::npos);
}

TEST_F(ContractTest, WatchStreamsEventsAfterTheGivenSequence) {
  grpc::ClientContext context;
  WatchJobRequest request;
  request.set_name("jobs/j1");
  request.set_after_sequence(1);
  auto reader = stub_->WatchJob(&context, request);
  JobEvent event;
  std::vector<int64_t> seen;
  while (reader->Read(&event)) seen.push_back(event.sequence());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(seen, (std::vector<int64_t>{2, 3}));
}

TEST(WorkerContractTest, WorkerStreamMessagesHaveOneKindEach) {
  WorkerMessage message;
  message.mutable_hello()->set_worker_id("w1");
  message.mutable_heartbeat();  // Setting another member of the oneof clears hello.
  EXPECT_EQ(message.kind_case(), WorkerMessage::kHeartbeat);
  EXPECT_FALSE(message.has_hello());
  // The worker service's stubs exist for both sides.
  static_assert(std::is_base_of_v<grpc::Service, WorkerService::Service>);
  EXPECT_NE(&WorkerService::NewStub, nullptr);
}

}  // namespace
}  // namespace quantd::v1
