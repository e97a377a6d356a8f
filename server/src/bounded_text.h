// Values from requests quoted in error messages and log lines, bounded: an echoed value never makes
// a status larger than a client's metadata limit (a 10 kB path once turned INVALID_ARGUMENT into
// RESOURCE_EXHAUSTED), and bytes that are not printable UTF-8 are escaped, so a message is always
// valid UTF-8.
#ifndef QUANTD_SERVER_BOUNDED_TEXT_H_
#define QUANTD_SERVER_BOUNDED_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace quantd::server {

// At most this many bytes of a value are echoed.
inline constexpr size_t kMaxEchoedBytes = 160;

// "\"value\"", or "\"first bytes…\" (N bytes)" when longer than `max_bytes`; control characters
// and invalid UTF-8 bytes as \xNN.
std::string Quoted(std::string_view value, size_t max_bytes = kMaxEchoedBytes);

// Offset of the first byte that does not start or continue a valid UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are invalid), or npos when all of it is valid.
size_t FirstInvalidUtf8(std::string_view text);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_BOUNDED_TEXT_H_
