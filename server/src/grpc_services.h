// gRPC glue: QuantizationService and WorkerService authenticate the caller (auth/), check its
// roles, tenant and the limits, write the audit line of mutating calls, forward the RPC to the
// JobManager and turn its absl::Status into a grpc::Status (grpc_status.h). No job logic lives
// here.
//
// Requests are parsed by request_parsing.h rather than by gRPC, so that a string field that is not
// UTF-8 is INVALID_ARGUMENT naming the field instead of gRPC's INTERNAL with no message.
#ifndef QUANTD_SERVER_GRPC_SERVICES_H_
#define QUANTD_SERVER_GRPC_SERVICES_H_

#include <functional>

#include "auth/authenticator.h"
#include "job_manager.h"
#include "quantd/v1/quantization_service.grpc.pb.h"
#include "quantd/v1/worker_service.grpc.pb.h"
#include "request_limits.h"

namespace quantd::server {

class QuantizationServiceImpl final : public v1::QuantizationService::Service {
 public:
  // `authenticator` null: every caller is the anonymous principal (tests).
  QuantizationServiceImpl(JobManager* manager, const auth::Authenticator* authenticator = nullptr,
                          Limits limits = {});

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::Job* job) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* job) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* job) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;

 private:
  // Replaces gRPC's parsing of a unary method's request with ParseRequest().
  template <typename Request, typename Response>
  void ParseUnaryRequests(const char* method, grpc::Status (QuantizationServiceImpl::*handler)(
                                                  grpc::ServerContext*, const Request*, Response*));
  grpc::Status Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                     const std::function<bool(const v1::JobEvent&)>& write);

  JobManager* manager_;
  const auth::Authenticator* authenticator_;
  const Limits limits_;
  ConcurrencyQuota watchers_;  // WatchJob streams per principal.
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(JobManager* manager,
                             const auth::Authenticator* authenticator = nullptr)
      : manager_(manager), authenticator_(authenticator) {}

  // The caller needs the worker role; the first message must be a WorkerHello. A writer thread
  // drains the session's outbox while this thread reads the worker's messages; the stream ends
  // when either side closes.
  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ServerMessage, v1::WorkerMessage>* stream) override;

 private:
  JobManager* manager_;
  const auth::Authenticator* authenticator_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_GRPC_SERVICES_H_
