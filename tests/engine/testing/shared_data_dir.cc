#include "shared_data_dir.h"

#include <cstdlib>

namespace quantd::engine::testing {

std::string SharedDataDir() {
  const char* env = std::getenv("QUANTD_TEST_SHARED_DIR");
  return env != nullptr ? std::string(env) : std::string(QUANTD_SHARED_DIR);
}

}  // namespace quantd::engine::testing
