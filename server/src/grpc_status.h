// The one conversion from absl::Status (used everywhere in quantd) to grpc::Status (used only where
// an RPC finishes). The codes share their numbering, which grpc_status.cc checks at compile time.
#ifndef QUANTD_SERVER_GRPC_STATUS_H_
#define QUANTD_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace quantd::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_GRPC_STATUS_H_
