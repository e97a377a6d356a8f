// Counts every gRPC call a server finishes (quantd_grpc_requests_total{method,code}) and its
// latency (quantd_grpc_request_duration_seconds{method}) through a server interceptor, so no
// handler has to. Install it on the ServerBuilder:
//
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
//   creators.push_back(quantd::metrics::MakeGrpcMetricsInterceptorFactory(server_metrics));
//   builder.experimental().SetInterceptorCreators(std::move(creators));
#ifndef QUANTD_COMMON_METRICS_GRPC_GRPC_SERVER_METRICS_H_
#define QUANTD_COMMON_METRICS_GRPC_GRPC_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string_view>

#include "metrics/quantd_metrics.h"

namespace quantd::metrics {

// "OK", "INVALID_ARGUMENT", ... (the names gRPC's documentation and tools use).
std::string_view GrpcCodeName(grpc::StatusCode code);

// "/quantd.v1.QuantizationService/SubmitJob" -> "SubmitJob".
std::string_view GrpcMethodLabel(std::string_view full_method);

// `metrics` must outlive the server. A call that ends without the server sending a status (the
// client went away first) is counted with code CANCELLED.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeGrpcMetricsInterceptorFactory(ServerMetrics& metrics);

}  // namespace quantd::metrics

#endif  // QUANTD_COMMON_METRICS_GRPC_GRPC_SERVER_METRICS_H_
