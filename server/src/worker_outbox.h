// WorkerOutbox: the messages waiting to be written to one worker's stream. The JobManager pushes
// without blocking; the stream's writer thread pops. Closing it ends that writer.
//
// Thread-safety: every method may be called from any thread.
#ifndef QUANTD_SERVER_WORKER_OUTBOX_H_
#define QUANTD_SERVER_WORKER_OUTBOX_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "quantd/v1/worker_service.pb.h"

namespace quantd::server {

class WorkerOutbox {
 public:
  void Push(v1::ServerMessage message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    queue_.push_back(std::move(message));
    changed_.notify_all();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    changed_.notify_all();
  }
  // The next message; nullopt once closed (pending messages are dropped: the worker will say hello
  // again and the server re-sends what still matters).
  std::optional<v1::ServerMessage> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return closed_ || !queue_.empty(); });
    if (closed_) return std::nullopt;
    v1::ServerMessage message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<v1::ServerMessage> queue_;
  bool closed_ = false;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_WORKER_OUTBOX_H_
