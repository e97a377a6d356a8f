#include "auth/grpc_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

namespace quantd::server::auth {

PresentedCredentials CredentialsOf(const grpc::ServerContext& context) {
  PresentedCredentials presented;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    presented.authorization = std::string(it->second.data(), it->second.size());
  }
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    // Present only when the TLS handshake verified a client certificate against --tls-client-ca.
    for (const grpc::string_ref& cn : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      presented.certificate_cn = std::string(cn.data(), cn.size());
      break;
    }
  }
  return presented;
}

}  // namespace quantd::server::auth
