#include "pipeline/resume_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "io/file_util.h"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

constexpr int kFormat = 1;

absl::Status ErrnoStatus(std::string_view what, const std::string& path) {
  const int err = errno;
  std::string message = absl::StrCat(std::string(what), " ", path, ": ", std::strerror(err));
  return err == ENOSPC ? absl::ResourceExhaustedError(message) : absl::InternalError(message);
}

std::string EncodeFloats(const std::vector<float>& v) {
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
}

bool DecodeFloats(const std::string& text, std::vector<float>* out) {
  std::string bytes;
  if (!absl::Base64Unescape(text, &bytes) || bytes.size() % sizeof(float) != 0) return false;
  out->resize(bytes.size() / sizeof(float));
  std::memcpy(out->data(), bytes.data(), bytes.size());
  return true;
}

// Parses one layer record; false when it is not one.
bool ParseLayer(const nlohmann::json& j, JournalLayer* out) {
  if (!j.is_object() || !j.contains("layer") || !j["layer"].is_number_integer() ||
      !j.value("source", nlohmann::json()).is_string() ||
      !j.value("output", nlohmann::json()).is_string() || !j.contains("report") ||
      !j.value("norms", nlohmann::json()).is_object()) {
    return false;
  }
  out->layer = j["layer"].get<int>();
  out->source_digest = j["source"].get<std::string>();
  out->output_digest = j["output"].get<std::string>();
  out->report = j["report"];
  for (const auto& [name, value] : j["norms"].items()) {
    if (!value.is_string() || !DecodeFloats(value.get<std::string>(), &out->norms[name])) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string ResumeJournal::PathFor(const std::string& output_dir) {
  return TemporaryPathFor((std::filesystem::path(output_dir) / "resume").string());
}

absl::StatusOr<JournalContents> ResumeJournal::Read(const std::string& output_dir) {
  const std::string path = PathFor(output_dir);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no resume journal ", path));
  }
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  // A line is complete only with its newline: the text after the last one (if any) is torn.
  lines.pop_back();
  if (lines.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no header"));
  const nlohmann::json header = nlohmann::json::parse(lines[0], nullptr, false);
  if (header.is_discarded() || !header.is_object() || header.value("quantd_resume", 0) != kFormat ||
      !header.contains("layers_total") || !header["layers_total"].is_number_integer() ||
      !header.contains("fingerprint")) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a resume journal of format ", kFormat));
  }
  JournalContents contents;
  contents.layers_total = header["layers_total"].get<int>();
  absl::StatusOr<RunFingerprint> fingerprint = RunFingerprint::FromJson(header["fingerprint"]);
  if (!fingerprint.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", fingerprint.status().message()));
  }
  contents.fingerprint = *std::move(fingerprint);
  for (size_t i = 1; i < lines.size(); ++i) {
    JournalLayer layer;
    const nlohmann::json j = nlohmann::json::parse(lines[i], nullptr, false);
    if (j.is_discarded() || !ParseLayer(j, &layer) ||
        layer.layer != static_cast<int>(contents.layers.size())) {
      break;  // Records are appended in order; nothing after a bad one counts.
    }
    contents.layers.push_back(std::move(layer));
  }
  return contents;
}

absl::StatusOr<std::unique_ptr<ResumeJournal>> ResumeJournal::Create(
    const std::string& output_dir, const RunFingerprint& fingerprint, int layers_total) {
  const std::string path = PathFor(output_dir);
  const int fd = path_guard::Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", path);
  std::unique_ptr<ResumeJournal> journal(new ResumeJournal(path, fd));
  nlohmann::json header = {{"quantd_resume", kFormat},
                           {"layers_total", layers_total},
                           {"fingerprint", fingerprint.ToJson()}};
  if (absl::Status s = journal->AppendLine(header.dump()); !s.ok()) return s;
  if (absl::Status s = SyncDirectory(output_dir); !s.ok()) return s;
  return journal;
}

absl::StatusOr<std::unique_ptr<ResumeJournal>> ResumeJournal::Continue(
    const std::string& output_dir, int layers) {
  const std::string path = PathFor(output_dir);
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  // Keep the header and `layers` records; cut the rest (a torn or unverified tail).
  size_t keep = 0;
  for (int line = 0; line <= layers; ++line) {
    const size_t newline = text->find('\n', keep);
    if (newline == std::string::npos) {
      return absl::InternalError(absl::StrCat(path, ": fewer than ", layers, " layer records"));
    }
    keep = newline + 1;
  }
  const int fd = path_guard::Open(path, O_WRONLY | O_APPEND | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus("cannot open", path);
  if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) {
    ::close(fd);
    return ErrnoStatus("cannot truncate", path);
  }
  if (::fdatasync(fd) != 0) {
    ::close(fd);
    return ErrnoStatus("cannot sync", path);
  }
  return std::unique_ptr<ResumeJournal>(new ResumeJournal(path, fd));
}

void ResumeJournal::Remove(const std::string& output_dir) {
  std::error_code ec;
  std::filesystem::remove(PathFor(output_dir), ec);
}

ResumeJournal::~ResumeJournal() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status ResumeJournal::AppendLine(const std::string& line) {
  const std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus("cannot write", path_);
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) return ErrnoStatus("cannot sync", path_);
  return absl::OkStatus();
}

absl::Status ResumeJournal::Add(const JournalLayer& layer) {
  nlohmann::json norms = nlohmann::json::object();
  for (const auto& [name, values] : layer.norms) norms[name] = EncodeFloats(values);
  const nlohmann::json j = {{"layer", layer.layer},
                            {"source", layer.source_digest},
                            {"output", layer.output_digest},
                            {"report", layer.report},
                            {"norms", norms}};
  return AppendLine(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace quantd::engine
