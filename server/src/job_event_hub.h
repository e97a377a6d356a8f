// JobEventHub: wakes the watchers of a job when its events are stored, and keeps a bounded window
// of each unfinished job's most recent events so that watchers that keep up never touch the store.
//
// Memory is bounded by (unfinished jobs) x (window), whatever the number or speed of watchers: the
// hub holds no per-watcher queue. A watcher that falls behind the window is told so and reads the
// store instead (see JobManager::Watch). Publishing never blocks on a watcher.
//
// Thread-safety: every method may be called from any thread.
#ifndef QUANTD_SERVER_JOB_EVENT_HUB_H_
#define QUANTD_SERVER_JOB_EVENT_HUB_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "quantd/v1/job.pb.h"

namespace quantd::server {

class JobEventHub {
 public:
  explicit JobEventHub(size_t window) : window_(window < 1 ? 1 : window) {}

  // Starts tracking an unfinished job whose stored events end at `last_sequence`.
  void Open(const std::string& job_id, int64_t last_sequence);
  // Adds stored events (in sequence order) and wakes the job's watchers.
  void Publish(const std::string& job_id, const std::vector<v1::JobEvent>& events);
  // Stops tracking a job (it reached a terminal state); its watchers wake and read the store.
  void Close(const std::string& job_id);
  // Wakes every watcher for good (server shutdown).
  void Shutdown();

  enum class WaitResult {
    kEvents,   // `out` holds events with sequence > after, in order.
    kBehind,   // Events after `after` exist but left the window: read the store.
    kTimeout,  // Nothing new within the timeout.
    kNotOpen,  // The job is not tracked (finished, unknown or shutting down): read the store.
  };
  // Waits up to `timeout` for events with sequence > `after` and copies up to `max` of them.
  WaitResult Wait(const std::string& job_id, int64_t after, size_t max, absl::Duration timeout,
                  std::vector<v1::JobEvent>* out);

 private:
  struct Channel {
    std::deque<v1::JobEvent> recent;  // At most window_ events, consecutive sequences.
    int64_t last_sequence = 0;
    bool closed = false;
    std::condition_variable changed;
  };

  const size_t window_;
  std::mutex mu_;
  bool shutdown_ = false;
  std::map<std::string, std::shared_ptr<Channel>> channels_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_EVENT_HUB_H_
