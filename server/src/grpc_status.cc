#include "grpc_status.h"

#include <string>

namespace quantd::server {

#define QUANTD_SAME_CODE(absl_code, grpc_code)                     \
  static_assert(static_cast<int>(absl::StatusCode::absl_code) ==   \
                    static_cast<int>(grpc::StatusCode::grpc_code), \
                "absl and gRPC disagree on " #grpc_code)
QUANTD_SAME_CODE(kOk, OK);
QUANTD_SAME_CODE(kCancelled, CANCELLED);
QUANTD_SAME_CODE(kUnknown, UNKNOWN);
QUANTD_SAME_CODE(kInvalidArgument, INVALID_ARGUMENT);
QUANTD_SAME_CODE(kDeadlineExceeded, DEADLINE_EXCEEDED);
QUANTD_SAME_CODE(kNotFound, NOT_FOUND);
QUANTD_SAME_CODE(kAlreadyExists, ALREADY_EXISTS);
QUANTD_SAME_CODE(kPermissionDenied, PERMISSION_DENIED);
QUANTD_SAME_CODE(kResourceExhausted, RESOURCE_EXHAUSTED);
QUANTD_SAME_CODE(kFailedPrecondition, FAILED_PRECONDITION);
QUANTD_SAME_CODE(kAborted, ABORTED);
QUANTD_SAME_CODE(kOutOfRange, OUT_OF_RANGE);
QUANTD_SAME_CODE(kUnimplemented, UNIMPLEMENTED);
QUANTD_SAME_CODE(kInternal, INTERNAL);
QUANTD_SAME_CODE(kUnavailable, UNAVAILABLE);
QUANTD_SAME_CODE(kDataLoss, DATA_LOSS);
QUANTD_SAME_CODE(kUnauthenticated, UNAUTHENTICATED);
#undef QUANTD_SAME_CODE

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace quantd::server
