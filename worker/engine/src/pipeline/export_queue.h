// ExportQueue: runs the checkpoint writes (conversion to the output dtypes, pwrite into the
// shards) on one background thread, in submission order, so that writing layer i overlaps the
// backend's work on layer i+1. The queue is bounded: Submit() waits while `max_pending` tasks are
// queued, so the host holds the output of at most that many layers. The first failing task's
// status is kept; later tasks are skipped and Submit()/Drain() return it. Whatever the tasks
// touch (the exporter) must be left alone by other threads until Drain() returns.
#ifndef QUANTD_ENGINE_PIPELINE_EXPORT_QUEUE_H_
#define QUANTD_ENGINE_PIPELINE_EXPORT_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"

namespace quantd::engine {

class ExportQueue {
 public:
  using Task = std::function<absl::Status()>;

  explicit ExportQueue(int max_pending);
  // Drops the tasks not started and waits for the one running (call Drain() first to run all).
  ~ExportQueue();
  ExportQueue(const ExportQueue&) = delete;
  ExportQueue& operator=(const ExportQueue&) = delete;

  // Queues `task`; waits while `max_pending` tasks wait (besides the one running). Returns the
  // first failure so far, if any (the task is then dropped).
  absl::Status Submit(Task task);

  // Waits until every queued task has run; returns the first failure.
  absl::Status Drain();

  // Seconds the caller waited in Submit() and Drain(), and seconds the tasks ran, summed.
  double wait_seconds() const { return wait_seconds_; }
  double busy_seconds() const;

 private:
  void Run();

  const size_t max_pending_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Task> tasks_;
  bool running_task_ = false;
  bool stopping_ = false;
  absl::Status status_;
  double busy_seconds_ = 0.0;
  double wait_seconds_ = 0.0;
  std::thread thread_;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_PIPELINE_EXPORT_QUEUE_H_
