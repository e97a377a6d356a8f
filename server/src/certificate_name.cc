#include "certificate_name.h"

#include <arpa/inet.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"

namespace quantd::server {

absl::StatusOr<std::string> CertificateHostName(const std::string& path) {
  std::unique_ptr<FILE, decltype(&fclose)> file(fopen(path.c_str(), "r"), fclose);
  if (!file) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_X509(file.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM certificate"));
  std::string dns, ip;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS && dns.empty()) {
      dns.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                 ASN1_STRING_length(name->d.dNSName));
    } else if (name->type == GEN_IPADD && ip.empty()) {
      const int length = ASN1_STRING_length(name->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = {};
      if (inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(name->d.iPAddress),
                    text, sizeof(text)) != nullptr) {
        ip = text;
      }
    }
  }
  GENERAL_NAMES_free(names);
  if (!dns.empty()) return dns;
  if (!ip.empty()) return ip;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof(cn)) >
      0) {
    return std::string(cn);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, " names no host (no subjectAltName, no CN)"));
}

}  // namespace quantd::server
