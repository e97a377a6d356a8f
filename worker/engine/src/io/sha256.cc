#include "io/sha256.h"

#include <openssl/evp.h>

namespace quantd::engine {

struct Sha256::Context {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
  ctx_->md = EVP_MD_CTX_new();
  // Initialisation only fails without memory; Update/HexDigest then see a null context.
  if (ctx_->md != nullptr && EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_->md);
    ctx_->md = nullptr;
  }
}

Sha256::~Sha256() {
  if (ctx_->md != nullptr) EVP_MD_CTX_free(ctx_->md);
}

void Sha256::Update(absl::Span<const uint8_t> bytes) {
  if (ctx_->md != nullptr && !bytes.empty()) EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size());
}

void Sha256::Update(std::string_view text) {
  Update(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string Sha256::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (ctx_->md == nullptr || EVP_DigestFinal_ex(ctx_->md, digest, &n) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string Sha256Hex(std::string_view text) {
  Sha256 h;
  h.Update(text);
  return h.HexDigest();
}

}  // namespace quantd::engine
