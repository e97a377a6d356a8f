// Sha256: an incremental SHA-256 (OpenSSL) with a lower-case hex result, for artifact digests and
// the fingerprints of a resumable run.
#ifndef QUANTD_ENGINE_IO_SHA256_H_
#define QUANTD_ENGINE_IO_SHA256_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/types/span.h"

namespace quantd::engine {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::Span<const uint8_t> bytes);
  void Update(std::string_view text);
  // The digest of everything given so far, as 64 lower-case hex digits. Ends the computation.
  std::string HexDigest();

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

// SHA-256 of a string, as hex.
std::string Sha256Hex(std::string_view text);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_IO_SHA256_H_
