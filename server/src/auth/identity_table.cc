#include "auth/identity_table.h"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace quantd::server::auth {
namespace {

using Json = nlohmann::json;

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool PrintableName(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c == 0x7f) return false;
  }
  return true;
}

// The strings of a field that may be one string or a list of strings.
absl::StatusOr<std::vector<std::string>> Strings(const Json& value, const std::string& where) {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
    return out;
  }
  if (!value.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected a string or a list"));
  }
  for (const Json& item : value) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected strings"));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

absl::Status AddPrincipal(const Json& entry, const std::string& where, IdentityTable& table,
                          std::set<std::string>& names) {
  if (!entry.is_object()) return absl::InvalidArgumentError(where + ": expected an object");
  for (const auto& [key, value] : entry.items()) {
    if (key != "name" && key != "tenant" && key != "roles" && key != "token_sha256" &&
        key != "certificate_cn") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown key \"", key.substr(0, 64),
                       "\" (expected name, tenant, roles, token_sha256, certificate_cn)"));
    }
  }
  Principal principal;
  if (!entry.contains("name") || !entry["name"].is_string() ||
      !PrintableName(entry["name"].get<std::string>(), 128)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"name\" must be 1-128 printable characters without spaces"));
  }
  principal.name = entry["name"].get<std::string>();
  const std::string at = absl::StrCat(where, " (", principal.name, ")");
  if (!names.insert(principal.name).second) {
    return absl::InvalidArgumentError(absl::StrCat(at, ": the name is used twice"));
  }
  if (entry.contains("tenant")) {
    if (!entry["tenant"].is_string() || !ValidTenantName(entry["tenant"].get<std::string>())) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": \"tenant\" must be 1-63 of [a-z0-9_.-], starting with [a-z0-9]"));
    }
    principal.tenant = entry["tenant"].get<std::string>();
  }
  if (!entry.contains("roles")) {
    return absl::InvalidArgumentError(absl::StrCat(at, ": \"roles\" is required"));
  }
  absl::StatusOr<std::vector<std::string>> roles = Strings(entry["roles"], at + ": roles");
  if (!roles.ok()) return roles.status();
  for (const std::string& name : *roles) {
    std::optional<Role> role = ParseRole(name);
    if (!role) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": role \"", name.substr(0, 64),
                       "\" is not one of viewer, submitter, admin, worker"));
    }
    principal.roles |= static_cast<uint32_t>(*role);
  }
  if (principal.roles == 0) {
    return absl::InvalidArgumentError(absl::StrCat(at, ": \"roles\" is empty"));
  }
  bool credential = false;
  if (entry.contains("token_sha256")) {
    absl::StatusOr<std::vector<std::string>> digests =
        Strings(entry["token_sha256"], at + ": token_sha256");
    if (!digests.ok()) return digests.status();
    for (const std::string& digest : *digests) {
      if (!IsHexDigest(digest)) {
        return absl::InvalidArgumentError(absl::StrCat(
            at,
            ": token_sha256 entries must be 64 lower-case hex digits (the SHA-256 of the "
            "token, e.g. printf %s \"$TOKEN\" | sha256sum)"));
      }
      if (!table.by_token_sha256.emplace(digest, principal).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ": a token_sha256 is also given to another principal"));
      }
      credential = true;
    }
  }
  if (entry.contains("certificate_cn")) {
    if (!entry["certificate_cn"].is_string() ||
        entry["certificate_cn"].get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": certificate_cn must be a string"));
    }
    if (!table.by_certificate_cn.emplace(entry["certificate_cn"].get<std::string>(), principal)
             .second) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": certificate_cn is also given to another principal"));
    }
    credential = true;
  }
  if (!credential) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ": needs token_sha256 or certificate_cn (a way to authenticate)"));
  }
  table.tenants.insert(principal.tenant);
  ++table.principals;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<IdentityTable> ParseIdentities(std::string_view json_text, std::string_view source) {
  const std::string file(source);
  Json doc = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "principals") {
      return absl::InvalidArgumentError(absl::StrCat(file, ": unknown key \"", key.substr(0, 64),
                                                     "\" (expected \"principals\")"));
    }
  }
  if (!doc.contains("principals") || !doc["principals"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": \"principals\" must be a list"));
  }
  IdentityTable table;
  std::set<std::string> names;
  size_t index = 0;
  for (const Json& entry : doc["principals"]) {
    if (absl::Status s =
            AddPrincipal(entry, absl::StrCat(file, ": principals[", index++, "]"), table, names);
        !s.ok()) {
      return s;
    }
  }
  return table;
}

absl::StatusOr<IdentityTable> LoadIdentities(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  return ParseIdentities(text.str(), path);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace quantd::server::auth
