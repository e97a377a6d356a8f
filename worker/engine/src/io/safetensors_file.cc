#include "io/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/json_file.h"
#include "io/status_macros.h"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

// safetensors' own limit on the header size.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Source bytes ReadFloat converts before it drops their pages.
constexpr size_t kReadSliceBytes = size_t{16} << 20;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

std::optional<DType> ParseSafetensorsDType(std::string_view name) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64}) {
    if (DTypeName(t) == name) return t;
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = path_guard::Open(path, O_RDONLY);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open ", path, ": ", path_guard::ErrorText(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot memory-map ", path, ": ", strerror(errno)));
    }
    file->map_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  QUANTD_RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), size_);
}

absl::Status SafetensorsFile::ParseHeader() {
  auto bad = [this](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": invalid safetensors header: ", std::string(what)));
  };
  if (size_ < 8)
    return bad(absl::StrCat("file has ", size_, " bytes, fewer than the 8-byte length"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
  if (n > kMaxHeaderBytes || n > size_ - 8) {
    return bad(absl::StrCat("header length ", n, " exceeds the file (", size_, " bytes)"));
  }
  data_start_ = 8 + n;
  std::string_view text(reinterpret_cast<const char*>(map_ + 8), n);
  absl::StatusOr<nlohmann::json> json = ParseJson(text, path_);
  if (!json.ok() || !json->is_object()) return bad("the header is not a JSON object");
  const uint64_t data_size = size_ - data_start_;

  for (const auto& [name, value] : json->items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          return bad(absl::StrCat("__metadata__ value of \"", k, "\" is not a string"));
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    std::string where = absl::StrCat("tensor \"", name, "\": ");
    if (!value.is_object()) return bad(where + "entry is not an object");
    SafetensorsEntry e;
    e.name = name;
    auto dt = value.find("dtype");
    if (dt == value.end() || !dt->is_string()) return bad(where + "missing dtype");
    std::optional<DType> dtype = ParseSafetensorsDType(dt->get<std::string>());
    if (!dtype.has_value()) {
      return bad(absl::StrCat(where, "dtype ", dt->get<std::string>(),
                              " is not supported (expected F32, F16, BF16, I32 or I64)"));
    }
    e.dtype = *dtype;
    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) return bad(where + "missing shape");
    for (const nlohmann::json& d : *shape) {
      if (!d.is_number_unsigned()) return bad(where + "shape holds a non-negative-integer entry");
      e.shape.push_back(d.get<int64_t>());
    }
    auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return bad(where + "data_offsets must be [begin, end]");
    }
    e.begin = (*offsets)[0].get<uint64_t>();
    e.end = (*offsets)[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      return bad(absl::StrCat(where, "data_offsets [", e.begin, ", ", e.end,
                              "] lie outside the data section of ", data_size, " bytes"));
    }
    // Byte count without overflow: 128-bit products, capped once past any possible file.
    unsigned __int128 wide = static_cast<unsigned __int128>(DTypeSize(e.dtype));
    bool too_big = false;
    for (int64_t d : e.shape) {
      wide *= static_cast<uint64_t>(d);
      if (wide > (static_cast<unsigned __int128>(1) << 64)) {
        too_big = std::find(e.shape.begin(), e.shape.end(), 0) == e.shape.end();
        wide = too_big ? wide : 0;
        break;
      }
    }
    const uint64_t bytes = too_big ? 0 : static_cast<uint64_t>(wide);
    if (too_big || bytes != e.end - e.begin) {
      return bad(absl::StrCat(where, "shape ", ShapeString(e.shape), " of ",
                              std::string(DTypeName(e.dtype)), " needs ",
                              too_big ? std::string("more than the file's") : absl::StrCat(bytes),
                              " bytes but data_offsets span ", e.end - e.begin));
    }
    entries_.push_back(std::move(e));
  }
  std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < entries_.size(); ++i) {
    const SafetensorsEntry& prev = entries_[i - 1];
    if (entries_[i].begin < prev.end) {
      return bad(absl::StrCat("tensors \"", prev.name, "\" and \"", entries_[i].name,
                              "\" overlap in the data section"));
    }
  }
  for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
  return absl::OkStatus();
}

const SafetensorsEntry* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::Span<const uint8_t> SafetensorsFile::Bytes(const SafetensorsEntry& e) const {
  return absl::Span<const uint8_t>(map_ + data_start_ + e.begin, e.end - e.begin);
}

absl::StatusOr<Tensor> SafetensorsFile::ReadFloat(const SafetensorsEntry& e) const {
  if (IsIntegerDType(e.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": tensor \"", e.name, "\" has an integer dtype, expected F32, F16 or BF16"));
  }
  Tensor t(e.shape);
  ConvertReleasing(e.dtype, Bytes(e), t.ptr());
  QUANTD_RETURN_IF_ERROR(CheckFiniteWeights(path_, e.name, t.ptr(), t.data.size()));
  return t;
}

absl::Status CheckFiniteWeights(std::string_view file, std::string_view tensor, const float* values,
                                size_t count, size_t first_element) {
  for (size_t i = 0; i < count; ++i) {
    if (std::isfinite(values[i])) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(file), ": tensor \"", std::string(tensor), "\" holds ",
        std::isnan(values[i]) ? "NaN" : (values[i] > 0 ? "+inf" : "-inf"), " at element ",
        first_element + i,
        " (non-finite weights cannot be quantized; the checkpoint is corrupt or diverged)"));
  }
  return absl::OkStatus();
}

void SafetensorsFile::ReleasePages(absl::Span<const uint8_t> bytes) const {
  // The mapping is read-only and private: dropping its pages loses nothing (they stay in the page
  // cache and fault back in if read again), so the range is widened to whole pages.
  if (map_ == nullptr) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
  const uintptr_t last = reinterpret_cast<uintptr_t>(bytes.data() + bytes.size());
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void SafetensorsFile::ConvertReleasing(DType dtype, absl::Span<const uint8_t> bytes,
                                       float* out) const {
  const auto width = static_cast<size_t>(DTypeSize(dtype));
  const size_t n = bytes.size() / width;
  const size_t per_slice = kReadSliceBytes / width;
  for (size_t i = 0; i < n; i += per_slice) {
    const size_t m = std::min(per_slice, n - i);
    ToFloat32(dtype, bytes.data() + i * width, m, out + i);
    ReleasePages(bytes.subspan(i * width, m * width));
  }
}

absl::StatusOr<std::vector<int32_t>> SafetensorsFile::ReadInt32(const SafetensorsEntry& e) const {
  if (e.dtype != DType::kI32) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor \"", e.name, "\" has dtype ",
                                                   std::string(DTypeName(e.dtype)),
                                                   ", expected I32"));
  }
  std::vector<int32_t> values(static_cast<size_t>(e.numel()));
  if (!values.empty()) std::memcpy(values.data(), Bytes(e).data(), values.size() * 4);
  return values;
}

}  // namespace quantd::engine
