#include "credentials/client_channel.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace quantd::credentials {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& address,
                                                           const ClientTls& tls) {
  if (address.empty()) return absl::InvalidArgumentError("--address: empty");
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!tls.ca.empty() || !tls.cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!tls.ca.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(tls.ca, "--tls-ca");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!tls.cert.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(tls.cert, "--tls-cert");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(tls.key, "--tls-key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return grpc::CreateCustomChannel(address, credentials, args);
}

absl::StatusOr<std::string> ResolveToken(const std::string& token, const std::string& token_file) {
  if (!token.empty()) return std::string(absl::StripAsciiWhitespace(token));
  if (token_file.empty()) return std::string();
  absl::StatusOr<std::string> text = ReadFile(token_file, "--token-file");
  if (!text.ok()) return text.status();
  std::string first = text->substr(0, text->find('\n'));
  first = std::string(absl::StripAsciiWhitespace(first));
  if (first.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file: ", token_file, " is empty"));
  }
  return first;
}

void AttachToken(grpc::ClientContext& context, const std::string& token) {
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
}

}  // namespace quantd::credentials
