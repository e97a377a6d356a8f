#include "commands.h"

#include <cstdio>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace quantd::quantctl {
namespace {

using google::protobuf::util::TimeUtil;

std::string Json(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string Short(int value, const google::protobuf::EnumDescriptor* descriptor,
                  const std::string& prefix) {
  const auto* v = descriptor->FindValueByNumber(value);
  std::string name = v ? v->name() : std::to_string(value);
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(c));
  return name;
}
std::string StateName(v1::JobState s) { return Short(s, v1::JobState_descriptor(), "JOB_STATE_"); }
std::string PhaseName(v1::JobPhase p) { return Short(p, v1::JobPhase_descriptor(), "JOB_PHASE_"); }

int ExitFor(const v1::Job& job) {
  switch (job.state()) {
    case v1::JOB_STATE_FAILED:
      return kJobFailed;
    case v1::JOB_STATE_CANCELLED:
      return kJobCancelled;
    default:
      return kOk;
  }
}

std::string ProgressText(const v1::JobProgress& p) {
  std::string text = absl::StrFormat("%3.0f%% %s", p.fraction() * 100, PhaseName(p.phase()));
  if (p.layers_total() > 0)
    absl::StrAppend(&text, " ", p.layers_done(), "/", p.layers_total(), " layers");
  if (p.has_eta()) absl::StrAppend(&text, " eta ", p.eta().seconds(), "s");
  if (p.resumed_at_layer() > 0)
    absl::StrAppend(&text, " (resumed at layer ", p.resumed_at_layer(), ")");
  return text;
}

// One line of a job's quality report: perplexities, AWQ's gain, vLLM's TP sizes and kernels.
std::string QualityText(const v1::JobQuality& q) {
  return absl::StrFormat(
      "quality: perplexity float %.3f, quantized %.3f (%+.2f %%) on %d %s tokens; AWQ/RTN output "
      "error %.3f; vLLM tensor-parallel sizes [%s], kernels [%s]",
      q.perplexity_float(), q.perplexity_quantized(), q.perplexity_increase_percent(),
      q.tokens_scored(), q.source() == "eval_text" ? "eval_text" : "held-out",
      q.awq_to_rtn_error_ratio(), absl::StrJoin(q.vllm_tensor_parallel_sizes(), ", "),
      absl::StrJoin(q.vllm_kernels(), ", "));
}

// One human-readable line per event.
std::string EventLine(const v1::JobEvent& e) {
  std::string body;
  if (e.has_state_change()) {
    body = absl::StrCat("state ", StateName(e.state_change().state()), " (attempt ",
                        e.state_change().attempt(), ")");
    if (!e.state_change().worker().empty())
      absl::StrAppend(&body, " on ", e.state_change().worker());
    if (!e.state_change().error().message().empty()) {
      absl::StrAppend(&body, ": ", e.state_change().error().message());
    }
    if (e.state_change().has_quality()) {
      absl::StrAppend(&body, "; ", QualityText(e.state_change().quality()));
    }
  } else if (e.has_progress()) {
    body = absl::StrCat("progress ", ProgressText(e.progress()));
  } else if (e.has_log()) {
    body = absl::StrCat("log ", Short(e.log().level(), v1::LogLevel_descriptor(), "LOG_LEVEL_"),
                        " ", e.log().message());
  } else if (e.has_artifact()) {
    body = absl::StrCat("artifact ", e.artifact().path(), " ", e.artifact().size_bytes(), " ",
                        e.artifact().sha256());
  }
  return absl::StrCat("[", e.sequence(), "] ", body);
}

void PrintBar(const v1::JobProgress& p) {
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(p.fraction() * kWidth + 0.5);
  std::string bar = std::string(std::max(0, std::min(kWidth, filled)), '#') +
                    std::string(kWidth - std::max(0, std::min(kWidth, filled)), '.');
  std::fprintf(stdout, "\r\033[K[%s] %s", bar.c_str(), ProgressText(p).c_str());
  std::fflush(stdout);
}

void PrintJob(const v1::Job& job, const Output& out) {
  if (out.json) {
    std::cout << Json(job) << "\n";
    return;
  }
  std::cout << "name:     " << job.name() << "\n"
            << "state:    " << StateName(job.state()) << " (attempt " << job.attempt() << ")\n"
            << "model:    " << job.spec().model_dir() << "\n"
            << "output:   " << job.spec().output_dir() << "\n";
  if (!job.worker().empty()) {
    std::cout << "worker:   " << job.worker() << (job.gpu_indices_size() > 1 ? " gpus " : " gpu ")
              << (job.gpu_indices_size() > 1 ? absl::StrJoin(job.gpu_indices(), ",")
                                             : std::to_string(job.gpu_index()))
              << "\n";
  }
  if (job.has_progress()) std::cout << "progress: " << ProgressText(job.progress()) << "\n";
  if (job.queue_reason() != v1::QUEUE_REASON_UNSPECIFIED) {
    std::string reason = v1::QueueReason_Name(job.queue_reason());
    reason = absl::AsciiStrToLower(reason.substr(std::string("QUEUE_REASON_").size()));
    std::cout << "waiting:  " << reason << " since " << TimeUtil::ToString(job.queue_reason_time())
              << ": " << job.queue_message() << "\n";
  }
  if (job.min_gpu_memory_bytes() > 0) {
    std::cout << absl::StrFormat("gpu:      needs a GPU of at least %.1f GiB (plans %.1f GiB)\n",
                                 job.min_gpu_memory_bytes() / 1073741824.0,
                                 job.estimated_gpu_memory_bytes() / 1073741824.0);
  }
  if (!job.error().message().empty()) std::cout << "error:    " << job.error().message() << "\n";
  if (job.has_quality()) std::cout << "quality:  " << QualityText(job.quality()).substr(9) << "\n";
  std::cout << "created:  " << TimeUtil::ToString(job.create_time()) << "\n";
  for (const v1::Artifact& a : job.artifacts()) {
    std::cout << "artifact " << a.path() << " " << a.size_bytes() << " " << a.sha256() << "\n";
  }
}

// Follows a job's events, printing as `out` says; returns the exit code of the final state.
int FollowJob(client::QuantdClient& client, const std::string& name, int64_t after,
              const Output& out, bool logs_only) {
  bool bar_shown = false;
  absl::Status status = client.Follow(name, after, [&](const v1::JobEvent& e) {
    if (out.json) {
      std::cout << Json(e) << "\n" << std::flush;
    } else if (out.terminal && e.has_progress() && !logs_only) {
      PrintBar(e.progress());
      bar_shown = true;
    } else {
      if (bar_shown) std::cout << "\n";
      bar_shown = false;
      std::cout << EventLine(e) << "\n" << std::flush;
    }
  });
  if (bar_shown) std::cout << "\n";
  if (!status.ok()) return ReportError(status);
  absl::StatusOr<v1::Job> job = client.Get(name);
  if (!job.ok()) return ReportError(job.status());
  if (!logs_only) {
    if (out.json) {
      std::cout << Json(*job) << "\n";
    } else {
      std::cout << "job " << job->name() << " " << StateName(job->state()) << "\n";
      if (!job->error().message().empty()) std::cout << "error: " << job->error().message() << "\n";
      if (job->has_quality()) std::cout << QualityText(job->quality()) << "\n";
      for (const v1::Artifact& a : job->artifacts()) {
        std::cout << "artifact " << a.path() << " " << a.size_bytes() << " " << a.sha256() << "\n";
      }
    }
  }
  return ExitFor(*job);
}

}  // namespace

int ReportError(const absl::Status& status) {
  std::cerr << "quantctl: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kResourceExhausted:
      return kUsage;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kDenied;
    default:
      return kUnreachable;
  }
}

int SubmitCommand(client::QuantdClient& client, const v1::SubmitJobRequest& request, bool follow,
                  const Output& out) {
  absl::StatusOr<v1::Job> job = client.Submit(request);
  if (!job.ok()) return ReportError(job.status());
  if (!follow) {
    if (out.json) {
      std::cout << Json(*job) << "\n";
    } else {
      std::cout << job->name() << "\n";
    }
    return kOk;
  }
  if (!out.json) std::cout << "submitted " << job->name() << "\n" << std::flush;
  return FollowJob(client, job->name(), 0, out, /*logs_only=*/false);
}

int GetCommand(client::QuantdClient& client, const std::string& name, const Output& out) {
  absl::StatusOr<v1::Job> job = client.Get(name);
  if (!job.ok()) return ReportError(job.status());
  PrintJob(*job, out);
  return kOk;
}

int ListCommand(client::QuantdClient& client, const v1::ListJobsRequest& request, bool all,
                const Output& out) {
  v1::ListJobsRequest page_request = request;
  if (!out.json)
    std::printf("%-28s %-11s %-7s %-20s %s\n", "NAME", "STATE", "ATTEMPT", "WORKER", "MODEL");
  while (true) {
    absl::StatusOr<v1::ListJobsResponse> page = client.List(page_request);
    if (!page.ok()) return ReportError(page.status());
    for (const v1::Job& job : page->jobs()) {
      if (out.json) {
        std::cout << Json(job) << "\n";
      } else {
        std::printf("%-28s %-11s %-7d %-20s %s\n", job.name().c_str(),
                    StateName(job.state()).c_str(), job.attempt(), job.worker().c_str(),
                    job.spec().model_dir().c_str());
      }
    }
    if (!all || page->next_page_token().empty()) break;
    page_request.set_page_token(page->next_page_token());
  }
  return kOk;
}

int CancelCommand(client::QuantdClient& client, const std::string& name, const Output& out) {
  absl::StatusOr<v1::Job> job = client.Cancel(name);
  if (!job.ok()) return ReportError(job.status());
  if (out.json) {
    std::cout << Json(*job) << "\n";
  } else {
    std::cout << job->name() << " " << StateName(job->state()) << "\n";
  }
  return kOk;
}

int LogsCommand(client::QuantdClient& client, const std::string& name, bool follow,
                int64_t after_sequence, const Output& out) {
  if (follow) return FollowJob(client, name, after_sequence, out, /*logs_only=*/true);
  absl::StatusOr<v1::Job> job = client.Get(name);
  if (!job.ok()) return ReportError(job.status());
  if (job->last_event_sequence() <= after_sequence) return kOk;
  absl::Status status = client.Follow(
      name, after_sequence,
      [&](const v1::JobEvent& e) { std::cout << (out.json ? Json(e) : EventLine(e)) << "\n"; },
      job->last_event_sequence());
  return status.ok() ? kOk : ReportError(status);
}

int WorkersCommand(client::QuantdClient& client, const Output& out) {
  absl::StatusOr<v1::ListWorkersResponse> workers = client.ListWorkers();
  if (!workers.ok()) return ReportError(workers.status());
  if (!out.json)
    std::printf("%-24s %-13s %-9s %-40s %s\n", "NAME", "STATE", "CAPACITY", "GPUS", "RUNNING");
  for (const v1::Worker& w : workers->workers()) {
    if (out.json) {
      std::cout << Json(w) << "\n";
      continue;
    }
    std::vector<std::string> gpus;
    for (const v1::Gpu& g : w.gpus()) {
      gpus.push_back(absl::StrFormat("%d:%s(%.0fGiB)", g.index(), g.name(),
                                     g.memory_bytes() / double(1 << 30)));
    }
    std::printf("%-24s %-13s %-9d %-40s %s\n", w.name().c_str(),
                Short(w.state(), v1::WorkerState_descriptor(), "WORKER_STATE_").c_str(),
                w.capacity(), gpus.empty() ? "cpu" : absl::StrJoin(gpus, ",").c_str(),
                absl::StrJoin(w.running_jobs(), ",").c_str());
  }
  return kOk;
}

}  // namespace quantd::quantctl
