#include "pipeline/durable_progress.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/parallel_for.h"
#include "export/awq_export.h"
#include "export/compressed_tensors_export.h"
#include "io/file_util.h"
#include "io/status_macros.h"
#include "model/architecture.h"
#include "path_guard/confined_io.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

// How long a run waits for another one to let go of the output directory (a requeued attempt
// whose predecessor is still stopping).
constexpr absl::Duration kLockWait = absl::Seconds(60);

std::vector<const SafetensorsFile*> Raw(const std::vector<std::unique_ptr<SafetensorsFile>>& v) {
  std::vector<const SafetensorsFile*> raw;
  for (const auto& f : v) raw.push_back(f.get());
  return raw;
}

// The staged weight temporaries a run of `options` on `config` writes (the exporter's plan).
std::vector<std::string> PlannedStagedPaths(const QuantizeOptions& options,
                                            const ModelConfig& config) {
  const ExportOptions eo = ExportOptions::From(options, config);
  std::vector<std::string> paths;
  for (const ShardPlan& shard : PlanShards(PlanOutputStateDict(config, eo), eo.max_shard_bytes)) {
    paths.push_back(TemporaryPathFor((fs::path(options.output_dir) / shard.file_name).string()));
  }
  return paths;
}

// Output columns [first, first + count) of a GEMM-packed Linear (a part of a fused one; first and
// count are multiples of 8, so no packed word straddles two parts): ConcatOutputs' inverse.
GemmPackedLinear OutputSlice(const GemmPackedLinear& whole, int64_t first, int64_t count) {
  GemmPackedLinear p;
  p.in_features = whole.in_features;
  p.out_features = count;
  p.group_size = whole.group_size;
  p.scale_dtype = whole.scale_dtype;
  const int64_t groups = whole.in_features / whole.group_size;
  auto cut = [&](const auto& src, int64_t rows, int64_t divisor, auto* dst) {
    const int64_t cols = whole.out_features / divisor;
    for (int64_t r = 0; r < rows; ++r) {
      const auto row = src.begin() + r * cols + first / divisor;
      dst->insert(dst->end(), row, row + count / divisor);
    }
  };
  cut(whole.qweight, whole.in_features, 8, &p.qweight);
  cut(whole.qzeros, groups, 8, &p.qzeros);
  cut(whole.scales, groups, 1, &p.scales);
  if (whole.bias.has_value()) {
    p.bias.emplace(whole.bias->begin() + first, whole.bias->begin() + first + count);
  }
  return p;
}

std::string LayerRange(int k) { return k == 1 ? "layer 0" : absl::StrCat("layers 0-", k - 1); }

}  // namespace

absl::StatusOr<std::unique_ptr<DurableProgress>> DurableProgress::Prepare(
    const QuantizeOptions& options, const SourceModel& source, std::string_view backend,
    const std::vector<std::vector<int32_t>>& blocks, const LogFn& log) {
  std::unique_ptr<DurableProgress> p(new DurableProgress(options, log));
  p->layers_total_ = source.config.num_hidden_layers;
  // An output directory that does not exist yet holds nothing to resume; the exporter creates it
  // (after checking where it is) and Begin() locks it.
  QUANTD_RETURN_IF_ERROR(p->Lock());
  QUANTD_RETURN_IF_ERROR(p->OpenSource(source));
  // The fingerprint reads the executable and the embedding (a GiB for a 7B model): in the
  // background, unless an earlier run's journal needs it now.
  const std::string calibration = CalibrationDigest(blocks);
  p->fingerprint_ =
      std::async(std::launch::async, [o = &p->options_, backend = std::string(backend),
                                      files = Raw(p->source_files_), calibration] {
        return ComputeRunFingerprint(*o, backend, files, calibration);
      }).share();

  absl::StatusOr<JournalContents> journal = ResumeJournal::Read(options.output_dir);
  if (absl::IsNotFound(journal.status())) return p;
  const std::string out = options.output_dir;
  if (!journal.ok()) {
    p->restart_reason_ =
        absl::StrCat("its resume journal is unreadable (", journal.status().message(), ")");
    log(LogLevel::kWarning, absl::StrCat("starting over: ", out,
                                         " holds an interrupted run's "
                                         "progress that cannot be continued: ",
                                         p->restart_reason_));
    return p;
  }
  const int k = static_cast<int>(journal->layers.size());
  const std::string kept = absl::StrCat(k, " of ", journal->layers_total, " layers");
  if (options.restart) {
    p->restart_reason_ = "--restart";
    log(LogLevel::kInfo,
        absl::StrCat("--restart: discarding the progress of an interrupted run in ", out, " (",
                     kept, ")"));
    return p;
  }
  const absl::StatusOr<RunFingerprint>& now = p->fingerprint_.get();
  if (!now.ok()) return now.status();
  std::string why;
  if (journal->layers_total != p->layers_total_) {
    why = absl::StrCat("the model has ", p->layers_total_, " layers, the interrupted run's had ",
                       journal->layers_total);
  } else {
    why = journal->fingerprint.DifferenceFrom(*now);
  }
  if (why.empty() && k > 0) {
    if (absl::Status s = p->OpenStaged(PlannedStagedPaths(options, source.config)); !s.ok()) {
      why = absl::StrCat("its staged output files are missing or unreadable (", s.message(), ")");
    }
  }
  if (!why.empty()) {
    p->restart_reason_ = why;
    log(LogLevel::kWarning,
        absl::StrCat("starting over: ", out, " holds an interrupted run's progress (", kept,
                     ") that this run cannot continue: ", why));
    return p;
  }
  if (k == 0) return p;
  const absl::Time start = absl::Now();
  std::string changed;
  const int verified = p->VerifyKeptLayers(journal->layers, &changed);
  p->verify_seconds_ = absl::ToDoubleSeconds(absl::Now() - start);
  if (verified < k) {
    p->restart_reason_ = changed;
    log(LogLevel::kWarning,
        absl::StrCat(changed, " since the interrupted run: ",
                     verified == 0 ? "starting over"
                                   : absl::StrCat("keeping ", LayerRange(verified),
                                                  " (the same computation) and continuing from "
                                                  "layer ",
                                                  verified)));
  }
  if (verified == 0) return p;
  journal->layers.resize(static_cast<size_t>(verified));
  p->kept_ = std::move(journal->layers);
  p->resume_layer_ = verified;
  log(LogLevel::kInfo,
      absl::StrFormat("resuming an interrupted run: %s of %d are finished in %s (their model "
                      "tensors and staged output checked in %.2fs); replaying their float forward "
                      "to rebuild layer %d's input",
                      LayerRange(verified), p->layers_total_, out, p->verify_seconds_, verified));
  return p;
}

DurableProgress::~DurableProgress() {
  if (fingerprint_.valid()) fingerprint_.wait();  // it reads source_files_
  journal_.reset();
  for (int fd : staged_fds_) ::close(fd);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

absl::Status DurableProgress::Lock() {
  const std::string& dir = options_.output_dir;
  if (lock_fd_ >= 0) return absl::OkStatus();
  lock_fd_ = path_guard::Open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (lock_fd_ < 0 && errno == ENOENT) return absl::OkStatus();  // locked once created
  if (lock_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open output_dir ", dir, ": ", std::strerror(errno)));
  }
  const absl::Time deadline = absl::Now() + kLockWait;
  bool said = false;
  while (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("cannot lock output_dir ", dir, ": ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::FailedPreconditionError(absl::StrCat(
          "output_dir ", dir, " is in use by another quantization (it held the directory for ",
          absl::FormatDuration(kLockWait), "); use another output_dir"));
    }
    if (!said) {
      log_(LogLevel::kInfo,
           absl::StrCat("waiting for another quantization writing ", dir, " to stop"));
      said = true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::OkStatus();
}

absl::Status DurableProgress::OpenSource(const SourceModel& source) {
  for (const std::string& path : source.weights->files()) {
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
    source_files_.push_back(std::move(file));
  }
  return absl::OkStatus();
}

absl::Status DurableProgress::OpenStaged(const std::vector<std::string>& paths) {
  staged_files_.clear();
  for (int fd : staged_fds_) ::close(fd);
  staged_fds_.clear();
  for (const std::string& path : paths) {
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
    staged_files_.push_back(std::move(file));
    const int fd = path_guard::Open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
    }
    staged_fds_.push_back(fd);
  }
  return absl::OkStatus();
}

int DurableProgress::VerifyKeptLayers(const std::vector<JournalLayer>& layers, std::string* why) {
  const int k = static_cast<int>(layers.size());
  std::vector<std::string> source(k), output(k);
  const std::vector<const SafetensorsFile*> src = Raw(source_files_), staged = Raw(staged_files_);
  // Digesting is memory- and disk-bound: a few threads at most.
  ParallelForEach(k, HostThreads(8), [&](int64_t i) {
    source[static_cast<size_t>(i)] = LayerTensorsDigest(src, static_cast<int>(i));
    output[static_cast<size_t>(i)] = LayerTensorsDigest(staged, static_cast<int>(i));
  });
  for (int i = 0; i < k; ++i) {
    if (source[i] != layers[i].source_digest) {
      *why = absl::StrCat("layer ", i, "'s tensors in the model changed");
      return i;
    }
    if (output[i] != layers[i].output_digest) {
      *why = absl::StrCat("layer ", i, "'s staged output in ", options_.output_dir,
                          " is not what the interrupted run wrote");
      return i;
    }
  }
  return k;
}

nlohmann::json DurableProgress::ReportEntry(double replay_seconds) const {
  nlohmann::json j = {{"resumed_at_layer", resume_layer_},
                      {"layers_total", layers_total_},
                      {"verify_seconds", verify_seconds_},
                      {"replay_seconds", replay_seconds}};
  if (!restart_reason_.empty()) j["discarded_because"] = restart_reason_;
  return j;
}

absl::Status DurableProgress::Begin(AwqExporter& exporter) {
  QUANTD_RETURN_IF_ERROR(Lock());  // when Prepare found no output directory yet
  if (lock_fd_ < 0) {
    return absl::InternalError(absl::StrCat("output_dir ", options_.output_dir, " is missing"));
  }
  if (resume_layer_ > 0 && !exporter.ReusedStagedWeights()) {
    restart_reason_ = "its staged output files do not have this run's layout";
    log_(LogLevel::kWarning, absl::StrCat("starting over: ", restart_reason_));
    resume_layer_ = 0;
    kept_.clear();
  }
  for (int i = 0; i < resume_layer_; ++i) QUANTD_RETURN_IF_ERROR(exporter.MarkLayerWritten(i));
  QUANTD_RETURN_IF_ERROR(OpenStaged(exporter.StagedWeightPaths()));
  if (resume_layer_ > 0) {
    QUANTD_ASSIGN_OR_RETURN(journal_, ResumeJournal::Continue(options_.output_dir, resume_layer_));
  } else {
    ResumeJournal::Remove(options_.output_dir);  // an earlier run's, now overwritten
  }
  std::lock_guard<std::mutex> lock(mu_);
  durable_ = resume_layer_;
  return absl::OkStatus();
}

void DurableProgress::NoteSourceLayer(int layer) {
  if (layer < resume_layer_) return;  // checked by Prepare
  // On a thread of its own: hashing a Mixtral-8x7B layer's 2.8 GB held the next layer's read
  // back by seconds, and nothing needs the digest before the layer is committed.
  std::future<void> digesting = std::async(std::launch::async, [this, layer] {
    std::string digest = LayerTensorsDigest(Raw(source_files_), layer);
    {
      std::lock_guard<std::mutex> lock(mu_);
      source_digests_[layer] = std::move(digest);
    }
    source_ready_.notify_all();
  });
  std::lock_guard<std::mutex> lock(mu_);
  source_digesting_.push_back(std::move(digesting));
}

absl::Status DurableProgress::CommitLayer(int layer, nlohmann::json report,
                                          std::map<std::string, std::vector<float>> norms) {
  for (size_t i = 0; i < staged_fds_.size(); ++i) {
    if (::fdatasync(staged_fds_[i]) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot sync ", staged_files_[i]->path(), ": ", std::strerror(errno)));
    }
  }
  JournalLayer record;
  record.layer = layer;
  record.output_digest = LayerTensorsDigest(Raw(staged_files_), layer);
  record.report = std::move(report);
  record.norms = std::move(norms);
  {
    std::unique_lock<std::mutex> lock(mu_);
    source_ready_.wait(lock, [&] { return source_digests_.count(layer) > 0; });
    record.source_digest = std::move(source_digests_[layer]);
    source_digests_.erase(layer);
  }
  if (journal_ == nullptr) {
    const absl::StatusOr<RunFingerprint>& fingerprint = fingerprint_.get();
    if (!fingerprint.ok()) {
      return absl::Status(
          fingerprint.status().code(),
          absl::StrCat("fingerprinting the run for resuming: ", fingerprint.status().message()));
    }
    QUANTD_ASSIGN_OR_RETURN(
        journal_, ResumeJournal::Create(options_.output_dir, *fingerprint, layers_total_));
  }
  QUANTD_RETURN_IF_ERROR(journal_->Add(record));
  std::lock_guard<std::mutex> lock(mu_);
  durable_ = layer + 1;
  return absl::OkStatus();
}

int DurableProgress::layers_durable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_;
}

absl::StatusOr<QuantizedLayer> DurableProgress::KeptLayer(const ModelConfig& config,
                                                          int layer) const {
  auto find =
      [&](const std::string& name) -> std::pair<const SafetensorsFile*, const SafetensorsEntry*> {
    for (const auto& f : staged_files_) {
      if (const SafetensorsEntry* e = f->Find(name)) return {f.get(), e};
    }
    return {nullptr, nullptr};
  };
  auto half = [](const SafetensorsFile& f, const SafetensorsEntry& e) {
    const absl::Span<const uint8_t> b = f.Bytes(e);
    std::vector<uint16_t> v(b.size() / 2);
    std::memcpy(v.data(), b.data(), v.size() * 2);
    return v;
  };
  // The kept layers are in the run's format (part of the fingerprint), scales and biases in its
  // scale dtype.
  QuantFormat format = options_.quant_format();
  format.output_dtype = ResolveOutputDtype(config, format.output_dtype);
  const DType scale_dtype = FloatDTypeOf(ScaleDtypeOf(format));
  const bool compressed = format.format == CheckpointFormat::kCompressedTensors;
  QuantizedLayer q;
  q.index = layer;
  const std::vector<LinearSpec> specs = LayerLinears(config);
  for (size_t i = 0; i < specs.size();) {
    // A fused source (Phi-3's qkv_proj) holds consecutive canonical Linears stacked along the
    // output: read it whole, then hand out each part's columns.
    size_t end = i + 1;
    int64_t out = specs[i].out;
    while (end < specs.size() && specs[end].source == specs[i].source) out += specs[end++].out;
    const int64_t in = specs[i].in;
    const std::string base = LayerTensorName(layer, specs[i].source);
    GemmPackedLinear p;
    if (compressed) {
      auto [pf, pw] = find(base + ".weight_packed");
      auto [sf, sc] = find(base + ".weight_scale");
      auto [zf, zp] = find(base + ".weight_zero_point");
      if (pw == nullptr || sc == nullptr || (format.zero_point && zp == nullptr)) {
        return absl::InternalError(absl::StrCat("staged output has no packed ", base));
      }
      CompressedTensorsLinear c;
      c.out_features = out;
      c.in_features = in;
      c.groups = in / QuantScheme{options_.group_size, format.zero_point}.GroupFor(in);
      QUANTD_ASSIGN_OR_RETURN(c.weight_packed, pf->ReadInt32(*pw));
      if (format.zero_point) {
        QUANTD_ASSIGN_OR_RETURN(c.weight_zero_point, zf->ReadInt32(*zp));
      }
      p = GemmFromCompressedTensors(c, half(*sf, *sc), scale_dtype);
    } else {
      auto [qf, qw] = find(base + ".qweight");
      auto [zf, qz] = find(base + ".qzeros");
      auto [sf, sc] = find(base + ".scales");
      if (qw == nullptr || qz == nullptr || sc == nullptr) {
        return absl::InternalError(absl::StrCat("staged output has no packed ", base));
      }
      p.in_features = in;
      p.out_features = out;
      p.group_size = QuantScheme{options_.group_size, format.zero_point}.GroupFor(in);
      p.scale_dtype = scale_dtype;
      QUANTD_ASSIGN_OR_RETURN(p.qweight, qf->ReadInt32(*qw));
      QUANTD_ASSIGN_OR_RETURN(p.qzeros, zf->ReadInt32(*qz));
      p.scales = half(*sf, *sc);
    }
    if (auto [bf, b] = find(base + ".bias"); b != nullptr) p.bias = half(*bf, *b);
    if (end - i == 1) {
      q.linears.push_back({specs[i].name, std::move(p)});
    } else {
      for (int64_t first = 0; i < end; first += specs[i++].out) {
        q.linears.push_back({specs[i].name, OutputSlice(p, first, specs[i].out)});
      }
    }
    i = end;
  }
  const std::map<std::string, std::vector<float>>& norms = kept_[layer].norms;
  for (const LayerTensorSpec& spec : LayerFloatTensors(config)) {
    auto it = norms.find(spec.name);
    if (it == norms.end()) {
      return absl::InternalError(
          absl::StrCat("resume journal: layer ", layer, " has no ", spec.name));
    }
    Tensor t({static_cast<int64_t>(it->second.size())});
    t.data = it->second;
    q.floats.push_back({spec.name, std::move(t)});
  }
  return q;
}

void DurableProgress::Finish() {
  journal_.reset();
  ResumeJournal::Remove(options_.output_dir);
}

}  // namespace quantd::engine
