// Scheduler: decides which queued jobs run where. Pure placement logic with no state of its own;
// the JobManager feeds it snapshots of the queue and of the connected workers and carries out the
// placements it returns.
//
// Policy: jobs in priority order (higher first), equal priorities oldest first. A job goes to the
// GPU with the fewest jobs among those with a free slot on which the engine's memory plan
// (quantd/memory_plan/memory_plan.h, the code the engine chooses its token chunks with) fits it,
// given the GPU's total memory less the larger of what the scheduler reserved for the jobs it
// placed there and what the worker's heartbeat says is in use. A job that fits only in token
// chunks is placed too: the engine will chunk exactly as planned. The reservation is the plan's
// total on that GPU. A GPU has as many slots as its worker advertises (WorkerHello.capacity,
// default 1), capped by the server's `max_jobs_per_gpu` when that is > 0. A CPU-only worker offers
// `cpu_slots` slots and no memory check. A job that fits nowhere now is skipped, so it does not
// block smaller jobs behind it, and comes back with the reason it waits.
//
// A job for N GPUs (JobSpec.gpus, data-parallel calibration) takes one slot on each of N distinct
// GPUs of one worker, each fitting the plan for the job's largest per-GPU share of the calibration
// (the blocks are split across its GPUs), the N least loaded of the worker's GPUs that have room;
// only workers that run a job on that many GPUs (WorkerHello.max_job_gpus) qualify. So a worker
// with N GPUs runs one N-GPU job, N one-GPU jobs, or any mix. On a CPU-only worker a job takes
// N CPU slots. A job for one GPU is placed exactly as above.
//
// Thread-safety: stateless; safe from any thread.
#ifndef QUANTD_SERVER_SCHEDULER_H_
#define QUANTD_SERVER_SCHEDULER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quantd/memory_plan/memory_plan.h"

namespace quantd::server {

struct QueuedJob {
  std::string job_id;
  int32_t priority = 0;
  int64_t create_micros = 0;
  // The memory plan's inputs: the model's layer geometry and the calibration's blocks (those one
  // GPU holds: the job's blocks split across its GPUs).
  memory_plan::LayerGeometry geometry;
  int64_t blocks = 1;
  int64_t len = 1;
  int32_t gpus = 1;  // GPUs (CPU slots on a CPU-only worker) of one worker it runs on at once
};

struct GpuSlotView {
  int32_t index = 0;
  int64_t memory_bytes = 0;
  int32_t running_jobs = 0;
  int64_t reserved_bytes = 0;  // What the scheduler reserved for its running jobs.
  int64_t used_bytes = 0;      // In use, by the worker's latest heartbeat (0: not reported).
};

struct WorkerView {
  std::string worker_id;
  std::vector<GpuSlotView> gpus;  // Empty: a CPU-only worker.
  int32_t slots_per_gpu = 1;      // Jobs one GPU takes at once, as the worker advertises.
  int32_t cpu_slots = 1;          // CPU-only workers: jobs at once.
  int32_t cpu_running = 0;        // CPU slots taken
  int32_t max_job_gpus = 1;       // the most GPUs (CPU slots) it runs one job on
};

struct Placement {
  std::string job_id;
  std::string worker_id;
  int32_t gpu_index = -1;            // -1: CPU slots.
  int64_t reserved_bytes = 0;        // The plan's GPU memory on each of its GPUs (0 on CPU).
  std::vector<int32_t> gpu_indices;  // Every GPU, in rank order (gpu_index first); empty on CPU.
};

// Why a job was not placed.
enum class WaitReason {
  kNoWorker,            // no worker is connected
  kWaitingForCapacity,  // some connected worker can run it once it has room
  kGpuTooSmall,         // every connected worker has only GPUs too small for it, even idle
  kTooFewGpus,          // no connected worker runs one job on as many GPUs as it asks for
};
std::string_view WaitReasonName(WaitReason reason);  // "no_worker", ... (metric label values)

struct Waiting {
  std::string job_id;
  WaitReason reason = WaitReason::kNoWorker;
  int64_t largest_gpu_bytes = 0;  // the largest GPU of the connected workers (kGpuTooSmall)
  int32_t most_job_gpus = 0;      // the most GPUs a connected worker gives one job (kTooFewGpus)
};

struct ScheduleResult {
  std::vector<Placement> placements;
  std::vector<Waiting> waiting;  // every job of the queue that was not placed
};

class Scheduler {
 public:
  // max_jobs_per_gpu <= 0: as each worker advertises.
  explicit Scheduler(int max_jobs_per_gpu) : max_jobs_per_gpu_(max_jobs_per_gpu) {}

  // Placements for as many of `queue` as fit on `workers`, and why each other job waits.
  ScheduleResult Schedule(std::vector<QueuedJob> queue, std::vector<WorkerView> workers) const;

 private:
  int max_jobs_per_gpu_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_SCHEDULER_H_
