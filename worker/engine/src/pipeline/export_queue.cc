#include "pipeline/export_queue.h"

#include <utility>

#include "absl/time/clock.h"

namespace quantd::engine {

ExportQueue::ExportQueue(int max_pending)
    : max_pending_(static_cast<size_t>(max_pending < 1 ? 1 : max_pending)),
      thread_([this] { Run(); }) {}

ExportQueue::~ExportQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    tasks_.clear();  // after a failure or a cancellation nothing more is written
  }
  changed_.notify_all();
  thread_.join();
}

absl::Status ExportQueue::Submit(Task task) {
  const absl::Time start = absl::Now();
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return tasks_.size() < max_pending_ || !status_.ok(); });
  wait_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
  if (!status_.ok()) return status_;
  tasks_.push_back(std::move(task));
  lock.unlock();
  changed_.notify_all();
  return absl::OkStatus();
}

absl::Status ExportQueue::Drain() {
  const absl::Time start = absl::Now();
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return tasks_.empty() && !running_task_; });
  wait_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
  return status_;
}

double ExportQueue::busy_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_seconds_;
}

void ExportQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return !tasks_.empty() || stopping_; });
    if (tasks_.empty()) return;  // stopping, nothing left
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    const bool skip = !status_.ok();
    running_task_ = true;
    lock.unlock();
    changed_.notify_all();  // a slot is free for Submit()
    const absl::Time start = absl::Now();
    absl::Status s = skip ? absl::OkStatus() : task();
    task = nullptr;  // frees what the task held before the next one runs
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    lock.lock();
    running_task_ = false;
    busy_seconds_ += seconds;
    if (status_.ok() && !s.ok()) status_ = std::move(s);
    changed_.notify_all();
  }
}

}  // namespace quantd::engine
