#include "grpc_services.h"

#include <grpcpp/impl/codegen/method_handler.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "auth/access_policy.h"
#include "auth/audit_log.h"
#include "auth/grpc_credentials.h"
#include "bounded_text.h"
#include "google/protobuf/descriptor.h"
#include "grpc_status.h"
#include "logging/logging.h"
#include "request_parsing.h"

namespace quantd::server {
namespace {

using auth::Action;
using auth::Principal;

template <typename T>
absl::Status Unwrap(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return result.status();
  *out = std::move(*result);
  return absl::OkStatus();
}

absl::StatusOr<Principal> Authenticate(const auth::Authenticator* authenticator,
                                       const grpc::ServerContext& context) {
  if (authenticator == nullptr) return auth::AnonymousPrincipal();
  return authenticator->Authenticate(auth::CredentialsOf(context));
}

int MethodIndex(const char* method) {
  const google::protobuf::ServiceDescriptor* service =
      v1::SubmitJobRequest::descriptor()->file()->FindServiceByName("QuantizationService");
  return service->FindMethodByName(method)->index();
}

absl::Status ParseBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::InvalidArgumentError("unreadable request");
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return ParseRequest(bytes, message);
}

}  // namespace

QuantizationServiceImpl::QuantizationServiceImpl(JobManager* manager,
                                                 const auth::Authenticator* authenticator,
                                                 Limits limits)
    : manager_(manager), authenticator_(authenticator), limits_(limits) {
  ParseUnaryRequests("SubmitJob", &QuantizationServiceImpl::SubmitJob);
  ParseUnaryRequests("GetJob", &QuantizationServiceImpl::GetJob);
  ParseUnaryRequests("ListJobs", &QuantizationServiceImpl::ListJobs);
  ParseUnaryRequests("CancelJob", &QuantizationServiceImpl::CancelJob);
  ParseUnaryRequests("ListWorkers", &QuantizationServiceImpl::ListWorkers);
  // WatchJob as a "split" server stream: one request message read by us, then the events.
  MarkMethodStreamed(
      MethodIndex("WatchJob"),
      new grpc::internal::SplitServerStreamingHandler<grpc::ByteBuffer, v1::JobEvent>(
          [this](grpc::ServerContext* context,
                 grpc::ServerSplitStreamer<grpc::ByteBuffer, v1::JobEvent>* stream) {
            grpc::ByteBuffer buffer;
            v1::WatchJobRequest request;
            if (!stream->Read(&buffer)) {
              return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message");
            }
            absl::Status parsed = ParseBuffer(buffer, &request);
            if (!parsed.ok()) {
              absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
              return ToGrpcStatus(principal.ok() ? parsed : principal.status());
            }
            return Watch(context, request,
                         [stream](const v1::JobEvent& event) { return stream->Write(event); });
          }));
}

template <typename Request, typename Response>
void QuantizationServiceImpl::ParseUnaryRequests(
    const char* method,
    grpc::Status (QuantizationServiceImpl::*handler)(grpc::ServerContext*, const Request*,
                                                     Response*)) {
  MarkMethodStreamed(
      MethodIndex(method),
      new grpc::internal::StreamedUnaryHandler<grpc::ByteBuffer, Response>(
          [this, handler, method](grpc::ServerContext* context,
                                  grpc::ServerUnaryStreamer<grpc::ByteBuffer, Response>* stream) {
            grpc::ByteBuffer buffer;
            Request request;
            if (!stream->Read(&buffer)) {
              return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message");
            }
            if (absl::Status parsed = ParseBuffer(buffer, &request); !parsed.ok()) {
              // Who is asking comes first: an unauthenticated caller learns nothing more.
              absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
              if (std::string_view(method) == "SubmitJob" ||
                  std::string_view(method) == "CancelJob") {
                auth::Audit(principal.ok() ? &*principal : nullptr, method, context->peer(), "",
                            principal.ok() ? parsed : principal.status());
              }
              return ToGrpcStatus(principal.ok() ? parsed : principal.status());
            }
            Response response;
            grpc::Status status = (this->*handler)(context, &request, &response);
            if (status.ok() && !stream->Write(response)) {
              return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
            }
            return status;
          }));
}

grpc::Status QuantizationServiceImpl::SubmitJob(grpc::ServerContext* context,
                                                const v1::SubmitJobRequest* request, v1::Job* job) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  absl::Status status = principal.status();
  if (status.ok()) status = auth::CheckAction(*principal, Action::kSubmit);
  if (status.ok()) status = CheckSubmitLimits(*request, limits_);
  if (status.ok()) {
    SubmitContext submit{principal->tenant, principal->name, limits_.max_queued_jobs_per_tenant};
    status = Unwrap(manager_->Submit(*request, submit), job);
  }
  auth::Audit(principal.ok() ? &*principal : nullptr, "SubmitJob", context->peer(),
              status.ok() ? job->name() : std::string(), status);
  return ToGrpcStatus(status);
}

grpc::Status QuantizationServiceImpl::GetJob(grpc::ServerContext* context,
                                             const v1::GetJobRequest* request, v1::Job* job) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status s = auth::CheckAction(*principal, Action::kGet); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::Status status = Unwrap(manager_->Get(request->name()), job);
  if (status.ok()) status = auth::CheckJobAccess(*principal, Action::kGet, *job);
  if (!status.ok()) job->Clear();
  return ToGrpcStatus(status);
}

grpc::Status QuantizationServiceImpl::ListJobs(grpc::ServerContext* context,
                                               const v1::ListJobsRequest* request,
                                               v1::ListJobsResponse* response) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  v1::ListJobsRequest scoped = *request;
  if (absl::Status s = auth::ScopeListRequest(*principal, scoped); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (absl::Status s = CheckListLimits(scoped, limits_); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcStatus(Unwrap(manager_->List(scoped), response));
}

grpc::Status QuantizationServiceImpl::CancelJob(grpc::ServerContext* context,
                                                const v1::CancelJobRequest* request, v1::Job* job) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  absl::Status status = principal.status();
  if (status.ok()) status = auth::CheckAction(*principal, Action::kCancel);
  if (status.ok()) {
    // Tenant and owner never change: checking the stored job first is not racy.
    absl::StatusOr<v1::Job> stored = manager_->Get(request->name());
    status = stored.status();
    if (status.ok()) status = auth::CheckJobAccess(*principal, Action::kCancel, *stored);
  }
  if (status.ok()) status = Unwrap(manager_->Cancel(request->name()), job);
  auth::Audit(principal.ok() ? &*principal : nullptr, "CancelJob", context->peer(), request->name(),
              status);
  return ToGrpcStatus(status);
}

grpc::Status QuantizationServiceImpl::WatchJob(grpc::ServerContext* context,
                                               const v1::WatchJobRequest* request,
                                               grpc::ServerWriter<v1::JobEvent>* writer) {
  return Watch(context, *request,
               [writer](const v1::JobEvent& event) { return writer->Write(event); });
}

grpc::Status QuantizationServiceImpl::Watch(grpc::ServerContext* context,
                                            const v1::WatchJobRequest& request,
                                            const std::function<bool(const v1::JobEvent&)>& write) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status s = auth::CheckAction(*principal, Action::kWatch); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<v1::Job> job = manager_->Get(request.name());
  if (!job.ok()) return ToGrpcStatus(job.status());
  if (absl::Status s = auth::CheckJobAccess(*principal, Action::kWatch, *job); !s.ok()) {
    return ToGrpcStatus(s);
  }
  auto slot = watchers_.Acquire(
      principal->anonymous ? std::string() : principal->name, limits_.max_watchers_per_principal,
      absl::StrCat("WatchJob streams of ", principal->Describe()), "--max-watchers-per-principal");
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return ToGrpcStatus(manager_->Watch(request.name(), request.after_sequence(), write,
                                      [&] { return context->IsCancelled(); }));
}

grpc::Status QuantizationServiceImpl::ListWorkers(grpc::ServerContext* context,
                                                  const v1::ListWorkersRequest*,
                                                  v1::ListWorkersResponse* response) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status s = auth::CheckAction(*principal, Action::kListWorkers); !s.ok()) {
    return ToGrpcStatus(s);
  }
  *response = manager_->ListWorkers();
  if (!principal->Has(auth::Role::kAdmin)) {
    // Workers are shared; which jobs they run is only shown for the principal's tenant.
    for (v1::Worker& worker : *response->mutable_workers()) {
      std::vector<std::string> visible;
      for (const std::string& name : worker.running_jobs()) {
        absl::StatusOr<v1::Job> job = manager_->Get(name);
        if (job.ok() && job->tenant() == principal->tenant) visible.push_back(name);
      }
      worker.clear_running_jobs();
      for (std::string& name : visible) worker.add_running_jobs(std::move(name));
    }
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ServerMessage, v1::WorkerMessage>* stream) {
  absl::StatusOr<Principal> principal = Authenticate(authenticator_, *context);
  absl::Status allowed = principal.status();
  if (allowed.ok()) allowed = auth::CheckAction(*principal, Action::kServeJobs);
  if (!allowed.ok()) {
    auth::Audit(principal.ok() ? &*principal : nullptr, "WorkerService.Connect", context->peer(),
                "", allowed);
    return ToGrpcStatus(allowed);
  }
  v1::WorkerMessage message;
  if (!stream->Read(&message)) return grpc::Status::OK;
  if (!message.has_hello() || message.hello().worker_id().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "hello: the first WorkerMessage must be a WorkerHello with a worker_id"));
  }
  v1::ServerMessage hello;
  absl::StatusOr<WorkerSession> connected =
      manager_->ConnectWorker(message.hello(), hello.mutable_hello(), principal->name);
  auth::Audit(&*principal, "WorkerService.Connect", context->peer(),
              "workers/" + message.hello().worker_id(), connected.status());
  if (!connected.ok()) return ToGrpcStatus(connected.status());
  WorkerSession session = std::move(*connected);
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
