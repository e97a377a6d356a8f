// Runs Debian's `promtool check metrics` (package prometheus) on exposition text.
#ifndef QUANTD_TESTS_COMMON_METRICS_TESTING_PROMTOOL_H_
#define QUANTD_TESTS_COMMON_METRICS_TESTING_PROMTOOL_H_

#include <string>

namespace quantd::metrics::testing {

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

PromtoolResult PromtoolCheckMetrics(const std::string& exposition);

}  // namespace quantd::metrics::testing

#endif  // QUANTD_TESTS_COMMON_METRICS_TESTING_PROMTOOL_H_
