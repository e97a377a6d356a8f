// The identities file: who may call quantd and with what. Read at start-up and again on SIGHUP.
// JSON, one object:
//
//   {"principals": [
//      {"name": "alice", "tenant": "search", "roles": ["submitter"],
//       "token_sha256": ["<64 hex digits>", ...]},       // SHA-256 of each bearer token
//      {"name": "gpu-node-1", "roles": ["worker"], "certificate_cn": "gpu-node-1"}
//   ]}
//
// Tokens are never stored, only their SHA-256 (`printf %s "$TOKEN" | sha256sum`); a list allows
// two tokens while one is rotated out. "certificate_cn" maps a client certificate (verified against
// quantd --tls-client-ca) by its subject common name. "tenant" defaults to "default". Unknown keys,
// unknown roles, duplicate names, tokens or common names are errors naming the entry.
#ifndef QUANTD_SERVER_AUTH_IDENTITY_TABLE_H_
#define QUANTD_SERVER_AUTH_IDENTITY_TABLE_H_

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "auth/principal.h"

namespace quantd::server::auth {

struct IdentityTable {
  std::map<std::string, Principal> by_token_sha256;  // Lower-case hex digest -> principal.
  std::map<std::string, Principal> by_certificate_cn;
  std::set<std::string> tenants;
  size_t principals = 0;
};

// `source` names the file in errors.
absl::StatusOr<IdentityTable> ParseIdentities(std::string_view json_text, std::string_view source);
absl::StatusOr<IdentityTable> LoadIdentities(const std::string& path);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace quantd::server::auth

#endif  // QUANTD_SERVER_AUTH_IDENTITY_TABLE_H_
