#include "store/memory_job_store.h"

#include "job_store_conformance.h"

namespace quantd::server {

INSTANTIATE_TEST_SUITE_P(Memory, JobStoreConformance,
                         ::testing::Values([] { return std::make_unique<MemoryJobStore>(); }));

}  // namespace quantd::server
