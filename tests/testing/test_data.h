// Where tests find their data (tests/data/README.md): the build tree's mirror of tests/data, with
// its archives extracted and models/tiny-qwen2-wp linked to the demo model. The environment
// variable QUANTD_TEST_DATA_DIR overrides the built-in path: a device bundle carries its own copy.
#ifndef QUANTD_TESTS_TESTING_TEST_DATA_H_
#define QUANTD_TESTS_TESTING_TEST_DATA_H_

#include <cstdlib>
#include <string>

namespace quantd::test_data {

inline std::string Dir() {
  const char* env = std::getenv("QUANTD_TEST_DATA_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(QUANTD_TEST_DATA_DIR);
}

// `relative` is a path under tests/data as the mirror has it, e.g. "models/tiny-qwen2-wp/model".
inline std::string Path(const std::string& relative) { return Dir() + "/" + relative; }

}  // namespace quantd::test_data

#endif  // QUANTD_TESTS_TESTING_TEST_DATA_H_
