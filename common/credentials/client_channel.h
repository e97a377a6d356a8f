// A client's side of quantd's security: the channel (plaintext, or TLS verifying the server with
// a CA, optionally presenting a client certificate for mTLS) and the bearer token sent as
// "authorization: Bearer <token>" on every call.
#ifndef QUANTD_COMMON_CREDENTIALS_CLIENT_CHANNEL_H_
#define QUANTD_COMMON_CREDENTIALS_CLIENT_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace quantd::credentials {

struct ClientTls {
  std::string ca;    // PEM file: set = TLS, verifying the server against it.
  std::string cert;  // PEM files of a client certificate (mTLS); both or neither.
  std::string key;
  std::string server_name;  // Name to verify in the server's certificate instead of the host.
};

// Flags name the option in errors ("--tls-ca: cannot read ...").
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& address,
                                                           const ClientTls& tls);

// The token to send: `token` if set, else the first line of `token_file` (whitespace trimmed).
// "" when neither is set. InvalidArgument names the file when it cannot be read or is empty.
absl::StatusOr<std::string> ResolveToken(const std::string& token, const std::string& token_file);

// Adds the token to a call ("" adds nothing).
void AttachToken(grpc::ClientContext& context, const std::string& token);

}  // namespace quantd::credentials

#endif  // QUANTD_COMMON_CREDENTIALS_CLIENT_CHANNEL_H_
