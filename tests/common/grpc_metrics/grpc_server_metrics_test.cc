// The interceptor counts real gRPC calls on loopback, by method and status code, with latency.
#include "metrics/grpc/grpc_server_metrics.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <future>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/v1/quantization_service.grpc.pb.h"

namespace quantd::metrics {
namespace {

using ::testing::HasSubstr;

// grpc.health.v1.HealthCheckRequest{service: name}, encoded by hand (field 1, length-delimited).
grpc::ByteBuffer HealthCheckRequest(const std::string& name) {
  std::string bytes;
  if (!name.empty()) bytes = std::string(1, '\x0a') + static_cast<char>(name.size()) + name;
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::StatusCode Call(grpc::GenericStub& stub, const std::string& method,
                      grpc::ByteBuffer request) {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(status); });
  return done.get_future().get().error_code();
}

grpc::StatusCode CallHealthCheck(grpc::GenericStub& stub, const std::string& service) {
  return Call(stub, "/grpc.health.v1.Health/Check", HealthCheckRequest(service));
}

TEST(GrpcServerMetricsTest, CountsCallsByMethodAndCode) {
  Registry registry;
  auto metrics = ServerMetrics::Create(registry);
  ASSERT_TRUE(metrics.ok());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  // A service whose handlers are not overridden: every call answers UNIMPLEMENTED.
  quantd::v1::QuantizationService::Service unimplemented;
  builder.RegisterService(&unimplemented);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(MakeGrpcMetricsInterceptorFactory(**metrics));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  grpc::GenericStub stub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(CallHealthCheck(stub, ""), grpc::StatusCode::OK);
  EXPECT_EQ(CallHealthCheck(stub, ""), grpc::StatusCode::OK);
  EXPECT_EQ(CallHealthCheck(stub, "no.such.Service"), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Call(stub, "/quantd.v1.QuantizationService/SubmitJob", HealthCheckRequest("")),
            grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();

  std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("quantd_grpc_requests_total{method=\"Check\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("quantd_grpc_requests_total{method=\"Check\",code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("quantd_grpc_request_duration_seconds_count{method=\"Check\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("quantd_grpc_requests_total{method=\"SubmitJob\","
                              "code=\"UNIMPLEMENTED\"} 1\n"));
}

TEST(GrpcServerMetricsTest, NamesCodesAndMethodsAsOperatorsSeeThem) {
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcMethodLabel("/quantd.v1.QuantizationService/SubmitJob"), "SubmitJob");
  EXPECT_EQ(GrpcMethodLabel("bare"), "bare");
}

}  // namespace
}  // namespace quantd::metrics
