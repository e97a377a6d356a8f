#include "auth/authenticator.h"

#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace quantd::server::auth {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    const std::string& identities_path) {
  std::unique_ptr<Authenticator> authenticator(new Authenticator(identities_path));
  if (!identities_path.empty()) {
    if (absl::Status s = authenticator->Reload(); !s.ok()) return s;
  }
  return authenticator;
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::OkStatus();
  absl::StatusOr<IdentityTable> table = LoadIdentities(path_);
  if (!table.ok()) return table.status();
  std::lock_guard<std::mutex> lock(mu_);
  table_ = std::make_shared<const IdentityTable>(std::move(*table));
  return absl::OkStatus();
}

std::string Authenticator::IssueLocalWorkerToken() {
  if (anonymous()) return "";
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return "";
  const std::string token = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  Principal principal;
  principal.name = "local-worker";
  principal.roles = static_cast<uint32_t>(Role::kWorker);
  std::lock_guard<std::mutex> lock(mu_);
  issued_[Sha256Hex(token)] = principal;
  return token;
}

absl::StatusOr<Principal> Authenticator::Authenticate(const PresentedCredentials& presented) const {
  if (anonymous()) return AnonymousPrincipal();
  std::shared_ptr<const IdentityTable> table;
  {
    std::lock_guard<std::mutex> lock(mu_);
    table = table_;
  }
  if (presented.authorization) {
    const std::string& value = *presented.authorization;
    constexpr absl::string_view kScheme = "bearer ";
    if (value.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(value, kScheme)) {
      return absl::UnauthenticatedError("the authorization metadata must be \"Bearer <token>\"");
    }
    const std::string token(absl::StripAsciiWhitespace(value.substr(kScheme.size())));
    if (token.empty() || token.size() > kMaxTokenBytes) {
      return absl::UnauthenticatedError("the bearer token is empty or too long");
    }
    const std::string digest = Sha256Hex(token);
    if (auto it = table->by_token_sha256.find(digest); it != table->by_token_sha256.end()) {
      return it->second;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = issued_.find(digest); it != issued_.end()) return it->second;
    return absl::UnauthenticatedError(
        "the bearer token is not known to this server (mistyped, or revoked)");
  }
  if (presented.certificate_cn) {
    if (auto it = table->by_certificate_cn.find(*presented.certificate_cn);
        it != table->by_certificate_cn.end()) {
      return it->second;
    }
    return absl::UnauthenticatedError(
        "the client certificate's common name is not mapped to a principal");
  }
  return absl::UnauthenticatedError(
      "no credential: send \"authorization: Bearer <token>\" (quantctl --token, --token-file or "
      "QUANTD_TOKEN) or a client certificate");
}

std::set<std::string> Authenticator::tenants() const {
  std::set<std::string> out = {kDefaultTenant};
  std::lock_guard<std::mutex> lock(mu_);
  if (table_) out.insert(table_->tenants.begin(), table_->tenants.end());
  return out;
}

size_t Authenticator::principals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_ ? table_->principals : 0;
}

}  // namespace quantd::server::auth
