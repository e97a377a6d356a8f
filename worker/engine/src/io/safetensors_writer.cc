#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

// Rank of a dtype in safetensors' Dtype enum (…, F16, BF16, I32, …, F32, …); files store
// tensors by descending rank.
int DTypeRank(DType t) {
  switch (t) {
    case DType::kF16:
      return 0;
    case DType::kBF16:
      return 1;
    case DType::kI32:
      return 2;
    case DType::kF32:
      return 3;
  }
  return 0;
}

absl::Status ErrnoStatus(std::string_view what, const std::string& path) {
  int err = errno;
  std::string message = absl::StrCat(std::string(what), " ", path, ": ", std::strerror(err));
  return err == ENOSPC ? absl::ResourceExhaustedError(message) : absl::InternalError(message);
}

// Whether the file open at `fd` is `size` bytes long and starts with `prefix` + `header`.
bool HasLayout(int fd, uint64_t size, const uint8_t* prefix, const std::string& header) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != size) return false;
  std::string found(8 + header.size(), '\0');
  if (::pread(fd, found.data(), found.size(), 0) != static_cast<ssize_t>(found.size())) {
    return false;
  }
  return std::memcmp(found.data(), prefix, 8) == 0 &&
         found.compare(8, std::string::npos, header) == 0;
}

}  // namespace

SafetensorsLayout PlanSafetensorsLayout(std::vector<PlannedTensor> tensors,
                                        const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    int ra = DTypeRank(a.dtype), rb = DTypeRank(b.dtype);
    return ra != rb ? ra > rb : a.name < b.name;
  });
  SafetensorsLayout layout;
  // Written by hand: the key order (metadata first, then storage order) is part of the format.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":" + nlohmann::json(metadata).dump();
  }
  uint64_t offset = 0;
  for (const PlannedTensor& t : tensors) {
    uint64_t end = offset + static_cast<uint64_t>(t.byte_size());
    std::string item = absl::StrCat(nlohmann::json(t.name).dump(), ":{\"dtype\":\"",
                                    std::string(DTypeName(t.dtype)),
                                    "\",\"shape\":", nlohmann::json(t.shape).dump(),
                                    ",\"data_offsets\":[", offset, ",", end, "]}");
    header += (header.size() > 1 ? "," : "") + item;
    layout.offsets.push_back(offset);
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  layout.header = std::move(header);
  layout.ordered = std::move(tensors);
  layout.data_size = offset;
  return layout;
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& path, std::vector<PlannedTensor> tensors,
    const std::map<std::string, std::string>& metadata, bool reuse_existing) {
  std::unique_ptr<SafetensorsWriter> w(new SafetensorsWriter());
  w->path_ = path;
  w->layout_ = PlanSafetensorsLayout(std::move(tensors), metadata);
  for (size_t i = 0; i < w->layout_.ordered.size(); ++i) {
    if (!w->index_.emplace(w->layout_.ordered[i].name, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", w->layout_.ordered[i].name, "\" planned twice for ", path));
    }
  }
  w->written_.assign(w->layout_.ordered.size(), 0);
  uint8_t prefix[8];
  uint64_t n = w->layout_.header.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<uint8_t>(n >> (8 * i));
  w->data_start_ = 8 + n;
  if (reuse_existing) {
    w->fd_ = path_guard::Open(path, O_RDWR | O_NOFOLLOW);
    if (w->fd_ >= 0 && HasLayout(w->fd_, w->layout_.file_size(), prefix, w->layout_.header)) {
      w->reused_ = true;
      return w;
    }
    if (w->fd_ >= 0) ::close(w->fd_);
  }
  // O_NOFOLLOW: a symlink planted at the temporary name must not redirect the write.
  w->fd_ = path_guard::Open(path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
  if (w->fd_ < 0) return ErrnoStatus("cannot create", path);
  if (::ftruncate(w->fd_, static_cast<off_t>(w->layout_.file_size())) != 0) {
    return ErrnoStatus("cannot size", path);
  }
  if (::pwrite(w->fd_, prefix, 8, 0) != 8 ||
      ::pwrite(w->fd_, w->layout_.header.data(), n, 8) != static_cast<ssize_t>(n)) {
    return ErrnoStatus("cannot write the header of", path);
  }
  return w;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

bool SafetensorsWriter::Contains(std::string_view name) const {
  return index_.find(name) != index_.end();
}

const PlannedTensor* SafetensorsWriter::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &layout_.ordered[it->second];
}

absl::Status SafetensorsWriter::Write(std::string_view name, absl::Span<const uint8_t> bytes) {
  const PlannedTensor* t = Find(name);
  if (t != nullptr && static_cast<int64_t>(bytes.size()) != t->byte_size()) {
    return absl::InternalError(absl::StrCat("tensor \"", t->name, "\": ", bytes.size(),
                                            " bytes given, ", t->byte_size(), " planned"));
  }
  return WritePart(name, 0, bytes);
}

absl::Status SafetensorsWriter::WritePart(std::string_view name, uint64_t offset,
                                          absl::Span<const uint8_t> bytes) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not planned for ", path_));
  }
  const size_t i = it->second;
  const PlannedTensor& t = layout_.ordered[i];
  const uint64_t size = static_cast<uint64_t>(t.byte_size());
  if (offset > size || bytes.size() > size - offset || written_[i] + bytes.size() > size ||
      (written_[i] == size && size > 0)) {
    return absl::InternalError(absl::StrCat("tensor \"", t.name, "\": writing ", bytes.size(),
                                            " bytes at ", offset, " exceeds its ", size,
                                            " planned bytes or repeats a write"));
  }
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is already finished"));
  size_t done = 0;
  const uint64_t at = data_start_ + layout_.offsets[i] + offset;
  while (done < bytes.size()) {
    ssize_t n =
        ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus("cannot write", path_);
    done += static_cast<size_t>(n);
  }
  written_[i] += bytes.size();
  return absl::OkStatus();
}

std::vector<std::string> SafetensorsWriter::Missing() const {
  std::vector<std::string> missing;
  for (size_t i = 0; i < written_.size(); ++i) {
    // Empty tensors need no write.
    if (written_[i] != static_cast<uint64_t>(layout_.ordered[i].byte_size())) {
      missing.push_back(layout_.ordered[i].name);
    }
  }
  return missing;
}

absl::Status SafetensorsWriter::MarkWritten(std::string_view name) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::InternalError(
        absl::StrCat("tensor \"", std::string(name), "\" is not planned for ", path_));
  }
  written_[it->second] = static_cast<uint64_t>(layout_.ordered[it->second].byte_size());
  return absl::OkStatus();
}

void SafetensorsWriter::StartWriteback() const {
  if (fd_ >= 0) ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);  // best effort
}

absl::Status SafetensorsWriter::Finish() {
  std::vector<std::string> missing = Missing();
  if (!missing.empty()) {
    return absl::InternalError(absl::StrCat(path_, ": ", missing.size(),
                                            " planned tensors were never written, e.g. \"",
                                            missing.front(), "\""));
  }
  if (fd_ < 0) return absl::OkStatus();
  if (::fsync(fd_) != 0) return ErrnoStatus("cannot fsync", path_);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return ErrnoStatus("cannot close", path_);
  return absl::OkStatus();
}

}  // namespace quantd::engine
