#include "quantd_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quantd/v1/quantization_service.grpc.pb.h"

namespace quantd::client {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Worth reconnecting after: the server went away or restarts.
bool Transient(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kCancelled ||
         code == absl::StatusCode::kDeadlineExceeded || code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kInternal;
}

}  // namespace

struct QuantdClient::Rpc {
  std::unique_ptr<v1::QuantizationService::Stub> stub;
};

QuantdClient::QuantdClient(ClientOptions options, std::unique_ptr<Rpc> rpc)
    : options_(std::move(options)), rpc_(std::move(rpc)) {}

QuantdClient::~QuantdClient() = default;

std::string JobName(const std::string& id_or_name) {
  return id_or_name.rfind("jobs/", 0) == 0 ? id_or_name : "jobs/" + id_or_name;
}

absl::StatusOr<std::unique_ptr<QuantdClient>> QuantdClient::Connect(const ClientOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      credentials::OpenChannel(options.address, options.tls);
  if (!channel.ok()) return channel.status();
  auto rpc = std::make_unique<Rpc>();
  rpc->stub = v1::QuantizationService::NewStub(*channel);
  return std::unique_ptr<QuantdClient>(new QuantdClient(options, std::move(rpc)));
}

template <typename Response, typename Call>
absl::StatusOr<Response> QuantdClient::Unary(const Call& call) const {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  credentials::AttachToken(context, options_.token);
  Response response;
  absl::Status status = FromGrpc(call(&context, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::Job> QuantdClient::Submit(const v1::SubmitJobRequest& request) {
  return Unary<v1::Job>(
      [&](grpc::ClientContext* c, v1::Job* out) { return rpc_->stub->SubmitJob(c, request, out); });
}

absl::StatusOr<v1::Job> QuantdClient::Get(const std::string& name) {
  v1::GetJobRequest request;
  request.set_name(JobName(name));
  return Unary<v1::Job>(
      [&](grpc::ClientContext* c, v1::Job* out) { return rpc_->stub->GetJob(c, request, out); });
}

absl::StatusOr<v1::ListJobsResponse> QuantdClient::List(const v1::ListJobsRequest& request) {
  return Unary<v1::ListJobsResponse>([&](grpc::ClientContext* c, v1::ListJobsResponse* out) {
    return rpc_->stub->ListJobs(c, request, out);
  });
}

absl::StatusOr<v1::Job> QuantdClient::Cancel(const std::string& name) {
  v1::CancelJobRequest request;
  request.set_name(JobName(name));
  return Unary<v1::Job>(
      [&](grpc::ClientContext* c, v1::Job* out) { return rpc_->stub->CancelJob(c, request, out); });
}

absl::StatusOr<v1::ListWorkersResponse> QuantdClient::ListWorkers() {
  return Unary<v1::ListWorkersResponse>([&](grpc::ClientContext* c, v1::ListWorkersResponse* out) {
    return rpc_->stub->ListWorkers(c, v1::ListWorkersRequest(), out);
  });
}

absl::Status QuantdClient::Follow(const std::string& name, int64_t after_sequence,
                                  const std::function<void(const v1::JobEvent&)>& on_event,
                                  int64_t stop_at_sequence) {
  int64_t last = after_sequence;
  int failures = 0;
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    if (stop_at_sequence > 0 && last >= stop_at_sequence) return absl::OkStatus();
    grpc::ClientContext context;
    credentials::AttachToken(context, options_.token);
    v1::WatchJobRequest request;
    request.set_name(JobName(name));
    request.set_after_sequence(last);
    auto reader = rpc_->stub->WatchJob(&context, request);
    v1::JobEvent event;
    bool terminal = false;
    while (reader->Read(&event)) {
      if (event.sequence() != last + 1) continue;  // Never a duplicate (or a gap) to the caller.
      last = event.sequence();
      failures = 0;
      backoff = absl::Milliseconds(100);
      on_event(event);
      terminal = event.has_state_change() && Terminal(event.state_change().state());
      if (terminal || (stop_at_sequence > 0 && last >= stop_at_sequence)) {
        context.TryCancel();
        break;
      }
    }
    absl::Status status = FromGrpc(reader->Finish());
    if (terminal || (stop_at_sequence > 0 && last >= stop_at_sequence)) return absl::OkStatus();
    if (status.ok()) continue;  // Server ended the stream early (shutting down): resume.
    if (!Transient(status.code()) || ++failures > options_.max_reconnects) return status;
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(backoff));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace quantd::client
