#include "job_event_hub.h"

namespace quantd::server {

void JobEventHub::Open(const std::string& job_id, int64_t last_sequence) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& channel = channels_[job_id];
  if (!channel) channel = std::make_shared<Channel>();
  channel->last_sequence = last_sequence;
}

void JobEventHub::Publish(const std::string& job_id, const std::vector<v1::JobEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = channels_.find(job_id);
  if (it == channels_.end() || events.empty()) return;
  Channel& channel = *it->second;
  for (const v1::JobEvent& event : events) {
    channel.recent.push_back(event);
    if (channel.recent.size() > window_) channel.recent.pop_front();
    channel.last_sequence = event.sequence();
  }
  channel.changed.notify_all();
}

void JobEventHub::Close(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = channels_.find(job_id);
  if (it == channels_.end()) return;
  it->second->closed = true;
  it->second->changed.notify_all();
  channels_.erase(it);
}

void JobEventHub::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  for (auto& [id, channel] : channels_) {
    channel->closed = true;
    channel->changed.notify_all();
  }
  channels_.clear();
}

JobEventHub::WaitResult JobEventHub::Wait(const std::string& job_id, int64_t after, size_t max,
                                          absl::Duration timeout, std::vector<v1::JobEvent>* out) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = channels_.find(job_id);
  if (shutdown_ || it == channels_.end()) return WaitResult::kNotOpen;
  std::shared_ptr<Channel> channel = it->second;  // Outlives Close() while we wait.
  channel->changed.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                            [&] { return channel->closed || channel->last_sequence > after; });
  if (channel->last_sequence <= after) {
    return channel->closed ? WaitResult::kNotOpen : WaitResult::kTimeout;
  }
  if (channel->recent.empty() || channel->recent.front().sequence() > after + 1) {
    return WaitResult::kBehind;
  }
  for (const v1::JobEvent& event : channel->recent) {
    if (event.sequence() <= after) continue;
    if (out->size() >= max) break;
    out->push_back(event);
  }
  return WaitResult::kEvents;
}

}  // namespace quantd::server
