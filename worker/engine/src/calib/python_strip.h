// Python's str.strip() with no argument on UTF-8 text: removes leading and trailing code points
// for which str.isspace() is true (ASCII whitespace, \x1c-\x1f, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). AutoAWQ strips each calibration text
// this way before encoding it.
#ifndef QUANTD_ENGINE_CALIB_PYTHON_STRIP_H_
#define QUANTD_ENGINE_CALIB_PYTHON_STRIP_H_

#include <string_view>

namespace quantd::engine {

std::string_view PythonStrip(std::string_view text);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CALIB_PYTHON_STRIP_H_
