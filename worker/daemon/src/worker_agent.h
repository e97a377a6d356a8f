// WorkerAgent: quantd-worker's connection to quantd and its table of jobs.
//
// Run() keeps one WorkerService.Connect stream open, reconnecting with exponential backoff (with
// jitter) when it drops. On every (re)connect it says hello with the jobs it still has; the server
// answers which to stop and, for the adopted ones, the last report it stored, after which the agent
// resends what the server missed. Each job runs in its own EngineProcess, so nothing a job does can
// take the worker down. Reports are numbered per (job, attempt) from 1 and kept until the job is
// forgotten, which bounds resending to one job's reports.
//
// Threading: Run() on one thread; a sender thread per connection writes; engine callbacks come from
// each EngineProcess's reader thread. One mutex guards the job table.
#ifndef QUANTD_WORKER_DAEMON_WORKER_AGENT_H_
#define QUANTD_WORKER_DAEMON_WORKER_AGENT_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine_process.h"
#include "quantd/v1/worker_service.pb.h"

namespace quantd::worker {

struct WorkerOptions {
  std::string server = "127.0.0.1:7450";
  std::string worker_id;
  std::string engine;
  int capacity = 1;  // Jobs per GPU, or CPU slots without GPUs.
  absl::Duration cancel_grace = absl::Seconds(10);
  absl::Duration max_backoff = absl::Seconds(10);
  std::string tls_ca;  // PEM; set = TLS.
  std::vector<v1::Gpu> gpus;
};

class WorkerAgent {
 public:
  explicit WorkerAgent(WorkerOptions options) : options_(std::move(options)) {}
  ~WorkerAgent();

  // Connects and serves until Stop(). Then cancels running jobs and waits for them.
  void Run();
  void Stop();

 private:
  struct Job {
    v1::JobAssignment assignment;
    std::unique_ptr<EngineProcess> process;
    std::vector<v1::JobReport> reports;  // reports[i].report_number() == i + 1
    size_t sent = 0;                     // Reports written on the current stream.
    bool started_sent = false;
    std::optional<v1::JobFinished> finished;
    bool finished_sent = false;
    absl::Time finished_sent_at;
  };
  // How long a finished job is remembered after its JobFinished was written, in case the stream
  // broke before the server stored it (the next hello then lists it and the server re-adopts it).
  static constexpr absl::Duration kRememberFinished = absl::Minutes(10);
  class Connection;

  // One connection's life; returns after it drops. True when the hello exchange succeeded.
  bool Serve();
  v1::WorkerHello MakeHello();
  // Applies the ServerHello; returns processes to destroy outside the lock.
  std::vector<std::unique_ptr<EngineProcess>> ApplyHelloLocked(const v1::ServerHello& hello);
  void StartJob(const v1::JobAssignment& assignment);
  void CancelJob(const v1::CancelAssignment& cancel);
  // The messages due on the stream now, marking them sent.
  std::vector<v1::WorkerMessage> TakeOutgoingLocked();
  void OnReport(const std::string& job_id, int32_t attempt, v1::JobReport report);
  void OnFinished(const std::string& job_id, int32_t attempt, v1::JobFinished finished);

  const WorkerOptions options_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, Job> jobs_;
  bool stopping_ = false;
  absl::Duration heartbeat_interval_ = absl::Seconds(2);
  std::shared_ptr<void> live_context_;  // grpc::ClientContext of the open stream, to cancel it.
};

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_WORKER_AGENT_H_
