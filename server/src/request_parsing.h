// Parsing a request's bytes into its message with errors a client can act on. protobuf refuses a
// proto3 string field that is not UTF-8, and gRPC then answers INTERNAL with an empty message;
// here the same request is INVALID_ARGUMENT naming the field ("spec.calib_jsonl: not valid UTF-8
// (byte 0xff at offset 12)").
#ifndef QUANTD_SERVER_REQUEST_PARSING_H_
#define QUANTD_SERVER_REQUEST_PARSING_H_

#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace quantd::server {

absl::Status ParseRequest(std::string_view bytes, google::protobuf::Message* message);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_REQUEST_PARSING_H_
