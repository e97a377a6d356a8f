// QuantdClient: the C++ client library of quantd (what quantctl is built on). Owns the channel,
// credentials and the reconnect-and-resume logic of watching a job.
//
// Threading: one client may be used from several threads at once.
#ifndef QUANTD_CLIENT_QUANTD_CLIENT_H_
#define QUANTD_CLIENT_QUANTD_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "credentials/client_channel.h"
#include "quantd/v1/quantization_service.pb.h"

namespace quantd::client {

struct ClientOptions {
  std::string address = "127.0.0.1:7450";
  credentials::ClientTls tls;                      // tls.ca set = TLS (see client_channel.h).
  std::string token;                               // Bearer token; "" = none.
  absl::Duration rpc_timeout = absl::Seconds(30);  // Unary RPCs.
  absl::Duration max_backoff = absl::Seconds(5);   // Between reconnects of a watch.
  int max_reconnects = 30;                         // Consecutive failed reconnects of a watch.
};

class QuantdClient {
 public:
  static absl::StatusOr<std::unique_ptr<QuantdClient>> Connect(const ClientOptions& options);
  ~QuantdClient();

  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> Get(const std::string& name);
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> Cancel(const std::string& name);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers();

  // Calls `on_event` for every event of the job after `after_sequence`, in order and exactly once,
  // until the terminal event (OK) or, when stop_at_sequence > 0, until that sequence. A dropped
  // stream is reopened from the last sequence received, with backoff.
  absl::Status Follow(const std::string& name, int64_t after_sequence,
                      const std::function<void(const v1::JobEvent&)>& on_event,
                      int64_t stop_at_sequence = 0);

 private:
  struct Rpc;  // The channel and stub.
  QuantdClient(ClientOptions options, std::unique_ptr<Rpc> rpc);
  // Runs one unary RPC with the configured deadline.
  template <typename Response, typename Call>
  absl::StatusOr<Response> Unary(const Call& call) const;

  ClientOptions options_;
  std::unique_ptr<Rpc> rpc_;
};

// "jobs/{id}" for a bare id; names are returned unchanged.
std::string JobName(const std::string& id_or_name);

}  // namespace quantd::client

#endif  // QUANTD_CLIENT_QUANTD_CLIENT_H_
