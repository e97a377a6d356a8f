// Scheduler: decides which queued jobs run where. Pure placement logic with no state of its own;
// the JobManager feeds it snapshots of the queue and of the connected workers and carries out the
// placements it returns.
//
// Policy: jobs in priority order (higher first), equal priorities oldest first. A job goes to the
// GPU with the fewest jobs among those with a free slot and enough memory for the job's estimate
// after what its running jobs reserved. A GPU has as many slots as its worker advertises
// (WorkerHello.capacity, default 1), capped by the server's `max_jobs_per_gpu` when that is > 0. A
// CPU-only worker offers `cpu_slots` slots and no memory check. A job that fits nowhere is skipped,
// so it does not block smaller jobs behind it; it stays queued until a worker that fits it has
// room.
//
// Thread-safety: stateless; safe from any thread.
#ifndef QUANTD_SERVER_SCHEDULER_H_
#define QUANTD_SERVER_SCHEDULER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace quantd::server {

struct QueuedJob {
  std::string job_id;
  int32_t priority = 0;
  int64_t create_micros = 0;
  int64_t estimated_bytes = 0;
};

struct GpuSlotView {
  int32_t index = 0;
  int64_t memory_bytes = 0;
  int32_t running_jobs = 0;
  int64_t reserved_bytes = 0;  // Sum of the estimates of its running jobs.
};

struct WorkerView {
  std::string worker_id;
  std::vector<GpuSlotView> gpus;  // Empty: a CPU-only worker.
  int32_t slots_per_gpu = 1;      // Jobs one GPU takes at once, as the worker advertises.
  int32_t cpu_slots = 1;          // CPU-only workers: jobs at once.
  int32_t cpu_running = 0;
};

struct Placement {
  std::string job_id;
  std::string worker_id;
  int32_t gpu_index = -1;  // -1: a CPU slot.
};

class Scheduler {
 public:
  // max_jobs_per_gpu <= 0: as each worker advertises.
  explicit Scheduler(int max_jobs_per_gpu) : max_jobs_per_gpu_(max_jobs_per_gpu) {}

  // Placements for as many of `queue` as fit on `workers`.
  std::vector<Placement> Schedule(std::vector<QueuedJob> queue,
                                  std::vector<WorkerView> workers) const;

 private:
  int max_jobs_per_gpu_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_SCHEDULER_H_
