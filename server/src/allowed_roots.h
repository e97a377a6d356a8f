// The directories a tenant's job paths must lie beneath. quantd --allowed-roots takes patterns in
// which "{tenant}" stands for the job's tenant (e.g. /models/{tenant}); the default is
// <state-dir>/data/{tenant}, never "anywhere".
#ifndef QUANTD_SERVER_ALLOWED_ROOTS_H_
#define QUANTD_SERVER_ALLOWED_ROOTS_H_

#include <string>
#include <vector>

namespace quantd::server {

inline constexpr char kTenantPlaceholder[] = "{tenant}";

std::string DefaultRootPattern(const std::string& state_dir);
// The patterns with {tenant} replaced (tenant names are safe path components:
// auth::ValidTenantName).
std::vector<std::string> RootsForTenant(const std::vector<std::string>& patterns,
                                        const std::string& tenant);
// Creates the tenant's roots that lie beneath `state_dir` (those of the default pattern), so that
// a user finds the directory to put models in. Others are the operator's to create.
void CreateStateDirRoots(const std::vector<std::string>& patterns, const std::string& state_dir,
                         const std::string& tenant);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_ALLOWED_ROOTS_H_
