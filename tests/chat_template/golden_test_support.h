// Helpers shared by the chat-template tests: reading test data from the source tree.
#ifndef QUANTD_TESTS_CHAT_TEMPLATE_GOLDEN_TEST_SUPPORT_H_
#define QUANTD_TESTS_CHAT_TEMPLATE_GOLDEN_TEST_SUPPORT_H_

#include <fstream>
#include <sstream>
#include <string>

namespace quantd::chat_template::testing {

inline std::string GoldenDir() {
  return std::string(QUANTD_SOURCE_DIR) + "/tests/golden/chat_template";
}

// Returns the file's bytes, or "" when it cannot be read (the caller asserts on content).
inline std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace quantd::chat_template::testing

#endif  // QUANTD_TESTS_CHAT_TEMPLATE_GOLDEN_TEST_SUPPORT_H_
