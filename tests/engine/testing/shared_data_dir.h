// Where the tests find ../shared (fixtures, models, configs): QUANTD_TEST_SHARED_DIR when set — the
// device machine runs the gpu tests from a bundle that carries its own copy — else the checkout's
// QUANTD_SHARED_DIR.
#ifndef QUANTD_TESTS_ENGINE_TESTING_SHARED_DATA_DIR_H_
#define QUANTD_TESTS_ENGINE_TESTING_SHARED_DATA_DIR_H_

#include <string>

namespace quantd::engine::testing {

std::string SharedDataDir();

}  // namespace quantd::engine::testing

#endif  // QUANTD_TESTS_ENGINE_TESTING_SHARED_DATA_DIR_H_
