// What a gRPC caller presented: the "authorization" metadata and, when TLS verified a client
// certificate, its subject common name.
#ifndef QUANTD_SERVER_AUTH_GRPC_CREDENTIALS_H_
#define QUANTD_SERVER_AUTH_GRPC_CREDENTIALS_H_

#include <grpcpp/server_context.h>

#include "auth/authenticator.h"

namespace quantd::server::auth {

PresentedCredentials CredentialsOf(const grpc::ServerContext& context);

}  // namespace quantd::server::auth

#endif  // QUANTD_SERVER_AUTH_GRPC_CREDENTIALS_H_
