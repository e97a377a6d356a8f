// QuantdServer assembled in-process: /metrics, /healthz and /readyz on --metrics-address, the gRPC
// health service saying what /readyz says, and the gRPC interceptor and store timing wired in.
#include "quantd_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quantd/v1/quantization_service.grpc.pb.h"

namespace quantd::server {
namespace {

// grpc.health.v1.Health/Check without its generated stubs (Debian ships none): the request is
// HealthCheckRequest{service = 1}, the answer HealthCheckResponse{status = 1} (1 SERVING,
// 2 NOT_SERVING). Returns the status, or -1 when the call failed.
int HealthStatus(const std::string& address, const std::string& service) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::string request = {0x0a, static_cast<char>(service.size())};
  request += service;
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1), response_buffer;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request_buffer,
                 &response_buffer, [&](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response_buffer.Dump(&slices).ok()) return -1;
  std::string response;
  for (const grpc::Slice& s : slices) response.append(s.begin(), s.end());
  return response.size() == 2 && response[0] == 0x08 ? response[1] : -1;
}

// The value of the sample whose line starts with `series` (name and labels as exposed).
std::optional<double> Sample(const std::string& exposition, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      return std::stod(std::string(line.substr(series.size() + 1)));
    }
  }
  return std::nullopt;
}

// gRPC and metrics on free loopback ports, in-memory store, no local worker.
ServerConfig LoopbackServerConfig() {
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.metrics_address = "127.0.0.1:0";
  config.store = "memory";
  config.local_worker = false;
  return config;
}

TEST(QuantdServerTest, MetricsHealthAndReadinessAgreeOnHttpAndGrpc) {
  ServerConfig config = LoopbackServerConfig();
  auto server = QuantdServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  const std::string url = (*server)->metrics_url();
  ASSERT_TRUE(absl::StartsWith(url, "http://127.0.0.1:")) << url;
  httplib::Client http(url);

  EXPECT_TRUE((*server)->Readiness().ok());
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(http.Get("/healthz")->status, 200);
  EXPECT_EQ(HealthStatus(address, ""), 1);
  EXPECT_EQ(HealthStatus(address, "quantd.v1.QuantizationService"), 1);

  // One RPC: the interceptor counts it by method and code, the store times its query.
  auto stub = v1::QuantizationService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(stub->ListJobs(&context, v1::ListJobsRequest(), &jobs).ok());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  const std::string& text = metrics->body;
  EXPECT_EQ(Sample(text, R"(quantd_grpc_requests_total{method="ListJobs",code="OK"})"), 1) << text;
  EXPECT_EQ(Sample(text, R"(quantd_store_operation_duration_seconds_count{operation="list_jobs"})"),
            1)
      << text;
  EXPECT_EQ(Sample(text, R"(quantd_jobs{state="queued"})"), 0) << text;
  EXPECT_EQ(Sample(text, R"(quantd_workers{state="idle"})"), 0) << text;

  (*server)->Shutdown();
  absl::Status after = (*server)->Readiness();
  EXPECT_EQ(after.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(after.message(), "shutting down")) << after;
}

TEST(QuantdServerTest, AMetricsAddressInUseIsAClearStartError) {
  ServerConfig config = LoopbackServerConfig();
  auto first = QuantdServer::Start(config);
  ASSERT_TRUE(first.ok()) << first.status();
  config.metrics_address = (*first)->metrics_url().substr(std::string("http://").size());
  auto second = QuantdServer::Start(config);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "--metrics-address")) << second.status();
}

}  // namespace
}  // namespace quantd::server
