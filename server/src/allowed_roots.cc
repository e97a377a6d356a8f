#include "allowed_roots.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace quantd::server {

std::string DefaultRootPattern(const std::string& state_dir) {
  return state_dir + "/data/" + kTenantPlaceholder;
}

std::vector<std::string> RootsForTenant(const std::vector<std::string>& patterns,
                                        const std::string& tenant) {
  std::vector<std::string> roots;
  for (const std::string& pattern : patterns) {
    roots.push_back(absl::StrReplaceAll(pattern, {{kTenantPlaceholder, tenant}}));
  }
  return roots;
}

void CreateStateDirRoots(const std::vector<std::string>& patterns, const std::string& state_dir,
                         const std::string& tenant) {
  for (const std::string& root : RootsForTenant(patterns, tenant)) {
    if (!absl::StartsWith(root, state_dir + "/")) continue;
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
  }
}

}  // namespace quantd::server
