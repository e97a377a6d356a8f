// WorkerAgent: quantd-worker's connection to quantd and its table of jobs.
//
// Run() keeps one WorkerService.Connect stream open, reconnecting with exponential backoff (with
// jitter) when it drops. On every (re)connect it says hello with the jobs it still has; the server
// answers which to stop and, for the adopted ones, the last report it stored, after which the agent
// resends what the server missed. Each job runs in its own EngineProcess, so nothing a job does can
// take the worker down. Reports are numbered per (job, attempt) from 1 and kept until the job is
// forgotten, which bounds resending to one job's reports.
//
// A job's log lines (logging with its job id, info and above) are also sent as log reports, so
// they reach the job's event stream (ForwardJobLog; main installs it as the logging sink).
// Metrics go to a WorkerMetricsRecorder.
//
// Threading: Run() on one thread; a sender thread per connection writes; engine callbacks come from
// each EngineProcess's reader thread. One mutex guards the job table; forwarded log lines wait in
// their own queue (the logging sink may run while the job-table mutex is held).
#ifndef QUANTD_WORKER_DAEMON_WORKER_AGENT_H_
#define QUANTD_WORKER_DAEMON_WORKER_AGENT_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "credentials/client_channel.h"
#include "engine_process.h"
#include "logging/logging.h"
#include "quantd/v1/worker_service.pb.h"
#include "worker_metrics_recorder.h"

namespace quantd::worker {

struct WorkerOptions {
  std::string server = "127.0.0.1:7450";
  std::string worker_id;
  std::string engine;
  int capacity = 1;  // Jobs per GPU, or CPU slots without GPUs.
  absl::Duration cancel_grace = absl::Seconds(10);
  absl::Duration max_backoff = absl::Seconds(10);
  credentials::ClientTls tls;  // tls.ca set = TLS.
  std::string token;           // Bearer token of this worker's credential ("" = none)...
  std::string token_file;      // ...or the file holding it, re-read at every connection.
  std::vector<v1::Gpu> gpus;
  // Device memory in use per GPU index, sent with every heartbeat (GpuMemoryMonitor::UsedBytes);
  // unset on a worker without GPUs or NVML, whose heartbeats carry none.
  std::function<std::map<int32_t, int64_t>()> gpu_memory_used;
};

class WorkerAgent {
 public:
  // `recorder` must outlive the agent.
  WorkerAgent(WorkerOptions options, WorkerMetricsRecorder& recorder)
      : options_(std::move(options)), recorder_(recorder) {}
  ~WorkerAgent();

  // Connects and serves until Stop(). Then cancels running jobs and waits for them.
  void Run();
  void Stop();
  // Queues a job's log line to be sent as a log report of that job (a logging::JobLineSink).
  void ForwardJobLog(logging::Level level, const std::string& job_id, const std::string& message);

 private:
  struct Job {
    v1::JobAssignment assignment;
    std::unique_ptr<EngineProcess> process;
    std::vector<v1::JobReport> reports;  // reports[i].report_number() == i + 1
    size_t sent = 0;                     // Reports written on the current stream.
    bool started_sent = false;
    bool resume_logged = false;
    std::optional<v1::JobFinished> finished;
    bool finished_sent = false;
    absl::Time finished_sent_at;
  };
  // How long a finished job is remembered after its JobFinished was written, in case the stream
  // broke before the server stored it (the next hello then lists it and the server re-adopts it).
  static constexpr absl::Duration kRememberFinished = absl::Minutes(10);
  // Forwarded log lines kept while no connection takes them.
  static constexpr size_t kMaxForwardedLines = 1000;
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
  // Numbers `report` and queues it for sending.
  void AddReportLocked(const std::string& job_id, Job& job, v1::JobReport report);
  void OnReport(const std::string& job_id, int32_t attempt, v1::JobReport report);
  void OnLayer(const std::string& job_id, int32_t attempt, const LayerDone& layer);
  void OnFinished(const std::string& job_id, int32_t attempt, v1::JobFinished finished);

  const WorkerOptions options_;
  WorkerMetricsRecorder& recorder_;
  struct ForwardedLine {
    std::string job_id;
    v1::LogLine line;
  };
  std::mutex forward_mu_;  // Taken after mu_, never before it.
  std::vector<ForwardedLine> forwarded_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, Job> jobs_;
  bool stopping_ = false;
  absl::Duration heartbeat_interval_ = absl::Seconds(2);
  std::shared_ptr<void> live_context_;  // grpc::ClientContext of the open stream, to cancel it.
};

}  // namespace quantd::worker

#endif  // QUANTD_WORKER_DAEMON_WORKER_AGENT_H_
