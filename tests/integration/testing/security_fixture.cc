#include "security_fixture.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace quantd::testing {
namespace fs = std::filesystem;

namespace {

absl::Status Run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    return absl::FailedPreconditionError("failed: " + command);
  }
  return absl::OkStatus();
}

constexpr char kNewKey[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

// A CA certificate and key.
absl::Status MakeCa(const fs::path& dir, const std::string& name) {
  return Run(absl::StrCat("openssl req -x509 ", kNewKey, " -days 2 -subj /CN=", name,
                          " -addext basicConstraints=critical,CA:TRUE",
                          " -addext keyUsage=critical,keyCertSign,cRLSign -keyout ",
                          (dir / (name + ".key")).string(), " -out ",
                          (dir / (name + ".pem")).string()));
}

// A leaf certificate `name` with `cn`, signed by CA `ca`, with the extensions in `extensions`.
absl::Status MakeLeaf(const fs::path& dir, const std::string& ca, const std::string& name,
                      const std::string& cn, const std::string& extensions) {
  const fs::path ext = dir / (name + ".ext");
  std::ofstream(ext) << extensions << "\n";
  if (absl::Status s = Run(absl::StrCat("openssl req ", kNewKey, " -subj /CN=", cn, " -keyout ",
                                        (dir / (name + ".key")).string(), " -out ",
                                        (dir / (name + ".csr")).string()));
      !s.ok()) {
    return s;
  }
  return Run(absl::StrCat("openssl x509 -req -days 2 -in ", (dir / (name + ".csr")).string(),
                          " -CA ", (dir / (ca + ".pem")).string(), " -CAkey ",
                          (dir / (ca + ".key")).string(), " -CAcreateserial -out ",
                          (dir / (name + ".pem")).string(), " -extfile ", ext.string()));
}

}  // namespace

absl::Status MakePki(const fs::path& dir, Pki* pki) {
  fs::create_directories(dir);
  for (absl::Status s :
       {MakeCa(dir, "ca"), MakeCa(dir, "rogue-ca"),
        MakeLeaf(dir, "ca", "server", "localhost",
                 "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                 "extendedKeyUsage=serverAuth"),
        MakeLeaf(dir, "ca", "alice", "alice-cert", "extendedKeyUsage=clientAuth"),
        MakeLeaf(dir, "rogue-ca", "rogue", "alice-cert", "extendedKeyUsage=clientAuth")}) {
    if (!s.ok()) return s;
  }
  auto path = [&](const std::string& name) { return (dir / name).string(); };
  *pki = {path("ca.pem"),    path("server.pem"), path("server.key"), path("alice.pem"),
          path("alice.key"), path("rogue.pem"),  path("rogue.key")};
  return absl::OkStatus();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += "0123456789abcdef"[digest[i] >> 4];
    hex += "0123456789abcdef"[digest[i] & 15];
  }
  return hex;
}

void WriteIdentities(const fs::path& file, const std::vector<Identity>& identities) {
  nlohmann::json principals = nlohmann::json::array();
  for (const Identity& identity : identities) {
    nlohmann::json entry = {{"name", identity.name}, {"roles", identity.roles}};
    if (!identity.tenant.empty()) entry["tenant"] = identity.tenant;
    if (!identity.token.empty()) entry["token_sha256"] = {Sha256Hex(identity.token)};
    if (!identity.certificate_cn.empty()) entry["certificate_cn"] = identity.certificate_cn;
    principals.push_back(entry);
  }
  const fs::path temp = file.string() + ".tmp";
  std::ofstream(temp) << nlohmann::json({{"principals", principals}}).dump(2);
  fs::rename(temp, file);
}

std::unique_ptr<client::QuantdClient> ClientWith(const std::string& address,
                                                 const std::string& token,
                                                 const credentials::ClientTls& tls) {
  client::ClientOptions options;
  options.address = address;
  options.token = token;
  options.tls = tls;
  options.rpc_timeout = absl::Seconds(10);
  options.max_backoff = absl::Milliseconds(200);
  options.max_reconnects = 3;
  return std::move(*client::QuantdClient::Connect(options));
}

std::string ServerLog(const fs::path& dir) {
  std::string all;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("quantd-", 0) != 0 || !name.ends_with(".log")) continue;
    std::stringstream text;
    text << std::ifstream(entry.path()).rdbuf();
    all += text.str();
  }
  return all;
}

}  // namespace quantd::testing
