// Credentials for the security tests, made at test time: a CA, server and client certificates
// (openssl CLI, EC P-256; no private key is committed), identities files with token hashes, and
// clients that present a token or a certificate.
#ifndef QUANTD_TESTS_INTEGRATION_TESTING_SECURITY_FIXTURE_H_
#define QUANTD_TESTS_INTEGRATION_TESTING_SECURITY_FIXTURE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "credentials/client_channel.h"
#include "quantd_client.h"

namespace quantd::testing {

struct Pki {
  std::string ca;           // The CA of the server certificate and of the client certificates.
  std::string server_cert;  // CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1.
  std::string server_key;
  std::string alice_cert;  // Client certificate, CN=alice-cert.
  std::string alice_key;
  std::string rogue_cert;  // CN=alice-cert too, but signed by another CA.
  std::string rogue_key;
};

// Makes the PKI under `dir`; an error names the openssl command that failed.
absl::Status MakePki(const std::filesystem::path& dir, Pki* pki);

struct Identity {
  std::string name;
  std::string tenant;  // "" = the default tenant.
  std::vector<std::string> roles;
  std::string token;           // Its SHA-256 goes in the file.
  std::string certificate_cn;  // "" = none.
};

std::string Sha256Hex(const std::string& data);
// Writes an identities file (docs/security.md) for `identities`.
void WriteIdentities(const std::filesystem::path& file, const std::vector<Identity>& identities);

std::unique_ptr<client::QuantdClient> ClientWith(const std::string& address,
                                                 const std::string& token,
                                                 const credentials::ClientTls& tls = {});

// The server's log so far (every quantd-*.log of the harness directory).
std::string ServerLog(const std::filesystem::path& dir);

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_INTEGRATION_TESTING_SECURITY_FIXTURE_H_
