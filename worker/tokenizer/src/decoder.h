// Decoders of tokenizer.json: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder
// and Sequence of them. Each rewrites the list of token strings, as HF's decode_chain does.
#ifndef QUANTD_TOKENIZER_DECODER_H_
#define QUANTD_TOKENIZER_DECODER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "json_util.h"

namespace quantd::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>& tokens) const = 0;
};

absl::StatusOr<std::unique_ptr<Decoder>> DecoderFromJson(const Json& json, std::string_view where);

// The ByteLevel decoder (the slow byte-level layout uses it).
std::unique_ptr<Decoder> MakeByteLevelDecoder();

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_DECODER_H_
