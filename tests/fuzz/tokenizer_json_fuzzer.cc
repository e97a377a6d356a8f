// tokenizer.json loading on arbitrary text (normalizers, pre-tokenizers with their regexes, BPE
// vocab and merges, added tokens, post-processors, decoders), then encoding and decoding a fixed
// text with what loaded.
#include <cstdint>

#include "fuzz_input_file.h"
#include "quantd/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = quantd::fuzz::InputInDirectory("tokenizer.json", data, size);
  auto tokenizer = quantd::tokenizer::Tokenizer::FromModelDir(dir);
  if (!tokenizer.ok()) return 0;
  for (const char* text : {"Hello, world! 123", " \xe4\xbd\xa0\xe5\xa5\xbd\n\t<|im_end|> x", ""}) {
    auto ids = (*tokenizer)->Encode(text, /*add_special_tokens=*/true);
    if (ids.ok()) (void)(*tokenizer)->Decode(*ids, /*skip_special_tokens=*/false);
  }
  return 0;
}
