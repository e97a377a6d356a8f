// Authenticator: turns what a caller presented (a bearer token, a verified client certificate)
// into a Principal. Without an identities file the server has no credentials: every caller is the
// anonymous principal with every role (quantd allows that only on loopback, or with --insecure).
// With one, a caller that presents nothing, or an unknown token or certificate, is UNAUTHENTICATED.
//
// The identities are replaced atomically by Reload() (SIGHUP); a file that does not parse leaves
// the previous identities in force. The local worker's credential is made at start-up
// (IssueLocalWorkerToken) and survives reloads.
//
// Thread-safe.
#ifndef QUANTD_SERVER_AUTH_AUTHENTICATOR_H_
#define QUANTD_SERVER_AUTH_AUTHENTICATOR_H_

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "auth/identity_table.h"
#include "auth/principal.h"

namespace quantd::server::auth {

// What a caller presented on one call.
struct PresentedCredentials {
  std::optional<std::string> authorization;   // The "authorization" metadata ("Bearer <token>").
  std::optional<std::string> certificate_cn;  // Subject CN of a client certificate TLS verified.
};

class Authenticator {
 public:
  // `identities_path` empty: no credentials (anonymous). Otherwise the file must load.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const std::string& identities_path);

  absl::StatusOr<Principal> Authenticate(const PresentedCredentials& presented) const;
  // Re-reads the identities file. On error the previous identities stay in force.
  absl::Status Reload();
  // A random token for the principal "local-worker" (role worker), accepted until the process
  // ends. Empty without credentials (the anonymous caller already has the worker role).
  std::string IssueLocalWorkerToken();

  bool anonymous() const { return path_.empty(); }
  // Tenants named by the identities (plus "default").
  std::set<std::string> tenants() const;
  size_t principals() const;

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const IdentityTable> table_;
  std::map<std::string, Principal> issued_;  // Token digest -> principal, made at start-up.
};

}  // namespace quantd::server::auth

#endif  // QUANTD_SERVER_AUTH_AUTHENTICATOR_H_
