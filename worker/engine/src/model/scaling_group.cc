#include "model/scaling_group.h"

#include <utility>

#include "absl/strings/str_join.h"

namespace quantd::engine {

ScalingGroup MakeScalingGroup(std::string prev_op, std::vector<std::string> linears,
                              InspectedModule inspect) {
  ScalingGroup g;
  g.label = prev_op + "->" + absl::StrJoin(linears, "+");
  g.prev_op = std::move(prev_op);
  g.input = linears.front();
  g.linears = std::move(linears);
  g.inspect = inspect;
  return g;
}

}  // namespace quantd::engine
