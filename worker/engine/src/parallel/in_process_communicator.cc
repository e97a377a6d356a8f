// The in-process group: the ranks meet at a generation-counted barrier; a reduction publishes each
// rank's buffer, lets every rank sum all of them in rank order into a private copy, meets again (so
// no buffer is read after its owner overwrites it) and copies the sum back.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "parallel/communicator.h"

namespace quantd::engine {
namespace {

class Group {
 public:
  explicit Group(int size) : size_(size), slots_(static_cast<size_t>(size)) {}

  int size() const { return size_; }

  absl::Status Barrier() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!aborted_.ok()) return aborted_;
    const uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return absl::OkStatus();
    }
    cv_.wait(lock, [&] { return generation_ != generation || !aborted_.ok(); });
    return generation_ != generation ? absl::OkStatus() : aborted_;
  }

  void Abort(const absl::Status& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_.ok()) aborted_ = why.ok() ? absl::AbortedError("aborted") : why;
    cv_.notify_all();
  }

  // Rank `rank`'s buffer of this collective, published before the first barrier.
  struct Slot {
    const void* data = nullptr;
    size_t count = 0;
  };
  void Publish(int rank, const void* data, size_t count) {
    slots_[static_cast<size_t>(rank)] = {data, count};
  }
  const Slot& slot(int rank) const { return slots_[static_cast<size_t>(rank)]; }

 private:
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  absl::Status aborted_;
  std::vector<Slot> slots_;  // written by each rank before a barrier, read by all after it
};

class InProcessCommunicator : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<Group> group, int rank)
      : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }

  absl::Status AllReduceSum(absl::Span<double> values) override { return Sum(values); }
  absl::Status AllReduceSum(absl::Span<float> values) override { return Sum(values); }

  absl::Status Broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size()) {
      return absl::InvalidArgumentError(absl::StrCat("broadcast root ", root, " of ", size()));
    }
    if (size() == 1) return absl::OkStatus();
    group_->Publish(rank_, data, bytes);
    if (absl::Status s = group_->Barrier(); !s.ok()) return s;
    if (absl::Status s = CheckCounts(bytes); !s.ok()) return s;
    if (rank_ != root) std::memcpy(data, group_->slot(root).data, bytes);
    return group_->Barrier();
  }

  absl::Status Barrier() override { return size() == 1 ? absl::OkStatus() : group_->Barrier(); }
  void Abort(const absl::Status& why) override { group_->Abort(why); }

 private:
  // A mismatch is a bug in the caller (ranks out of step): the group is aborted, not left hanging.
  absl::Status CheckCounts(size_t count) {
    for (int r = 0; r < size(); ++r) {
      if (group_->slot(r).count != count) {
        const absl::Status why = absl::InternalError(
            absl::StrCat("data-parallel ranks out of step: rank ", rank_, " reduces ", count,
                         " elements, rank ", r, " ", group_->slot(r).count));
        group_->Abort(why);
        return why;
      }
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Sum(absl::Span<T> values) {
    if (size() == 1) return absl::OkStatus();
    group_->Publish(rank_, values.data(), values.size());
    if (absl::Status s = group_->Barrier(); !s.ok()) return s;
    if (absl::Status s = CheckCounts(values.size()); !s.ok()) return s;
    std::vector<T> sum(values.size(), T(0));
    for (int r = 0; r < size(); ++r) {
      const T* other = static_cast<const T*>(group_->slot(r).data);
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += other[i];
    }
    if (absl::Status s = group_->Barrier(); !s.ok()) return s;
    std::copy(sum.begin(), sum.end(), values.begin());
    return absl::OkStatus();
  }

  std::shared_ptr<Group> group_;
  const int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> CreateInProcessGroup(int ranks) {
  auto group = std::make_shared<Group>(std::max(1, ranks));
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < group->size(); ++r) {
    comms.push_back(std::make_unique<InProcessCommunicator>(group, r));
  }
  return comms;
}

}  // namespace quantd::engine
