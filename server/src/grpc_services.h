// gRPC glue: QuantizationService and WorkerService forward every RPC to the JobManager and turn
// its absl::Status into a grpc::Status (grpc_status.h). No job logic lives here.
#ifndef QUANTD_SERVER_GRPC_SERVICES_H_
#define QUANTD_SERVER_GRPC_SERVICES_H_

#include "job_manager.h"
#include "quantd/v1/quantization_service.grpc.pb.h"
#include "quantd/v1/worker_service.grpc.pb.h"

namespace quantd::server {

class QuantizationServiceImpl final : public v1::QuantizationService::Service {
 public:
  explicit QuantizationServiceImpl(JobManager* manager) : manager_(manager) {}

  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                         v1::Job* job) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                      v1::Job* job) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                         v1::Job* job) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* response) override;

 private:
  JobManager* manager_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(JobManager* manager) : manager_(manager) {}

  // The first message must be a WorkerHello. A writer thread drains the session's outbox while
  // this thread reads the worker's messages; the stream ends when either side closes.
  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ServerMessage, v1::WorkerMessage>* stream) override;

 private:
  JobManager* manager_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_GRPC_SERVICES_H_
