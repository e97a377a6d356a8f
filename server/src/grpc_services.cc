#include "grpc_services.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc_status.h"
#include "logging/logging.h"

namespace quantd::server {

template <typename T>
static absl::Status Unwrap(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return result.status();
  *out = std::move(*result);
  return absl::OkStatus();
}

grpc::Status QuantizationServiceImpl::SubmitJob(grpc::ServerContext*,
                                                const v1::SubmitJobRequest* request, v1::Job* job) {
  return ToGrpcStatus(Unwrap(manager_->Submit(*request), job));
}

grpc::Status QuantizationServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                             v1::Job* job) {
  return ToGrpcStatus(Unwrap(manager_->Get(request->name()), job));
}

grpc::Status QuantizationServiceImpl::ListJobs(grpc::ServerContext*,
                                               const v1::ListJobsRequest* request,
                                               v1::ListJobsResponse* response) {
  return ToGrpcStatus(Unwrap(manager_->List(*request), response));
}

grpc::Status QuantizationServiceImpl::CancelJob(grpc::ServerContext*,
                                                const v1::CancelJobRequest* request, v1::Job* job) {
  return ToGrpcStatus(Unwrap(manager_->Cancel(request->name()), job));
}

grpc::Status QuantizationServiceImpl::WatchJob(grpc::ServerContext* context,
                                               const v1::WatchJobRequest* request,
                                               grpc::ServerWriter<v1::JobEvent>* writer) {
  return ToGrpcStatus(manager_->Watch(
      request->name(), request->after_sequence(),
      [&](const v1::JobEvent& event) { return writer->Write(event); },
      [&] { return context->IsCancelled(); }));
}

grpc::Status QuantizationServiceImpl::ListWorkers(grpc::ServerContext*,
                                                  const v1::ListWorkersRequest*,
                                                  v1::ListWorkersResponse* response) {
  *response = manager_->ListWorkers();
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ServerMessage, v1::WorkerMessage>* stream) {
  v1::WorkerMessage message;
  if (!stream->Read(&message)) return grpc::Status::OK;
  if (!message.has_hello() || message.hello().worker_id().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "hello: the first WorkerMessage must be a WorkerHello with a worker_id"));
  }
  v1::ServerMessage hello;
  WorkerSession session = manager_->ConnectWorker(message.hello(), hello.mutable_hello());
  // The hello goes first, ahead of any assignment already queued in the outbox.
  if (!stream->Write(hello)) {
    manager_->DisconnectWorker(session);
    return grpc::Status::OK;
  }
  std::thread writer([&] {
    while (std::optional<v1::ServerMessage> out = session.outbox->Pop()) {
      if (!stream->Write(*out)) break;
    }
    context->TryCancel();  // Unblocks the Read below when the writer stops first.
  });
  while (stream->Read(&message)) manager_->HandleWorkerMessage(session, message);
  manager_->DisconnectWorker(session);  // Closes the outbox, which ends the writer.
  session.outbox->Close();
  writer.join();
  return grpc::Status::OK;
}

}  // namespace quantd::server
