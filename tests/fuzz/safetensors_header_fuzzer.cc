// The safetensors reader on arbitrary bytes: header length, JSON header, dtypes, shapes and data
// offsets are validated before any tensor is read; every tensor it then accepts reads within the
// file.
#include <cstdint>

#include "fuzz_input_file.h"
#include "io/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = quantd::engine::SafetensorsFile::Open(quantd::fuzz::InputAsFile(data, size));
  if (!file.ok()) return 0;
  for (const quantd::engine::SafetensorsEntry& entry : (*file)->entries()) {
    if (entry.dtype == quantd::engine::DType::kI32) {
      (void)(*file)->ReadInt32(entry);
    } else {
      (void)(*file)->ReadFloat(entry);
    }
  }
  return 0;
}
