// Fuzz inputs as files, for parsers that read paths: a memfd rewritten per input (no disk I/O)
// named by its /proc/self/fd path, or a file in a private temporary directory when the parser wants
// a directory with fixed file names.
#ifndef QUANTD_TESTS_FUZZ_FUZZ_INPUT_FILE_H_
#define QUANTD_TESTS_FUZZ_FUZZ_INPUT_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace quantd::fuzz {

// Replaces the content of a process-wide memfd with `data`; returns its /proc/self/fd path.
const std::string& InputAsFile(const uint8_t* data, size_t size);

// Writes `data` to `name` in a temporary directory created once per process; returns the
// directory.
const std::string& InputInDirectory(const std::string& name, const uint8_t* data, size_t size);

}  // namespace quantd::fuzz

#endif  // QUANTD_TESTS_FUZZ_FUZZ_INPUT_FILE_H_
