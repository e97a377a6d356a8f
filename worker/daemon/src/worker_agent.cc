#include "worker_agent.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "logging/logging.h"
#include "quantd/v1/worker_service.grpc.pb.h"

namespace quantd::worker {
namespace {

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

WorkerAgent::~WorkerAgent() { Stop(); }

void WorkerAgent::Stop() {
  std::shared_ptr<void> context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    context = live_context_;
  }
  if (context) static_cast<grpc::ClientContext*>(context.get())->TryCancel();
  changed_.notify_all();
}

void WorkerAgent::Run() {
  absl::Duration backoff = absl::Milliseconds(100);
  std::mt19937 random{std::random_device{}()};
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    if (Serve()) backoff = absl::Milliseconds(100);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) break;
    // Full jitter: many workers reconnecting to a restarted server do not arrive at once.
    const double factor = std::uniform_real_distribution<double>(0.5, 1.0)(random);
    const absl::Duration wait = backoff * factor;
    logging::Info(
        absl::StrCat("reconnecting to ", options_.server, " in ", absl::FormatDuration(wait)));
    changed_.wait_for(lock, absl::ToChronoNanoseconds(wait), [&] { return stopping_; });
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  // Shutting down: stop the engines. Their output stays: the server requeues their jobs, and the
  // next attempts resume from the layers these finished.
  std::vector<std::unique_ptr<EngineProcess>> processes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (job.process) {
        job.process->Cancel(/*remove_output=*/false);
        processes.push_back(std::move(job.process));
      }
    }
  }
  processes.clear();  // Joins each engine's reader.
}

v1::WorkerHello WorkerAgent::MakeHello() {
  v1::WorkerHello hello;
  hello.set_worker_id(options_.worker_id);
  hello.set_host(HostName());
  hello.set_version(QUANTD_VERSION);
  *hello.mutable_gpus() = {options_.gpus.begin(), options_.gpus.end()};
  hello.set_capacity(options_.capacity);
  // One job may take every GPU (data-parallel calibration), or every CPU slot of a CPU worker.
  hello.set_max_job_gpus(options_.gpus.empty() ? std::max(1, options_.capacity)
                                               : static_cast<int32_t>(options_.gpus.size()));
  for (const auto& [id, job] : jobs_) {
    v1::RunningJob* running = hello.add_running_jobs();
    running->set_job_id(id);
    running->set_attempt(job.assignment.attempt());
  }
  return hello;
}

std::vector<std::unique_ptr<EngineProcess>> WorkerAgent::ApplyHelloLocked(
    const v1::ServerHello& hello) {
  heartbeat_interval_ = absl::Microseconds(
      google::protobuf::util::TimeUtil::DurationToMicroseconds(hello.heartbeat_interval()));
  if (heartbeat_interval_ <= absl::ZeroDuration()) heartbeat_interval_ = absl::Seconds(2);
  std::map<std::string, int64_t> adopted;
  for (const v1::AdoptedJob& job : hello.adopted_jobs()) {
    adopted[job.job_id()] = job.last_report_number();
  }
  std::vector<std::unique_ptr<EngineProcess>> dropped;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = it->second;
    auto found = adopted.find(it->first);
    if (found == adopted.end()) {
      // Not wanted any more (finished, cancelled or moved elsewhere while we were away).
      if (job.process) {
        if (!job.finished) logging::Info("server says stop: stopping the engine", {it->first, ""});
        job.process->Cancel(/*remove_output=*/false);
        dropped.push_back(std::move(job.process));
      }
      recorder_.JobForgotten(it->first);
      it = jobs_.erase(it);
      continue;
    }
    job.sent = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(found->second, 0)),
                                job.reports.size());
    job.started_sent = false;
    job.finished_sent = false;
    ++it;
  }
  return dropped;
}

std::vector<v1::WorkerMessage> WorkerAgent::TakeOutgoingLocked() {
  std::vector<v1::WorkerMessage> out;
  const absl::Time now = absl::Now();
  std::erase_if(jobs_, [&](const auto& entry) {
    return entry.second.finished_sent && now - entry.second.finished_sent_at > kRememberFinished;
  });
  std::vector<ForwardedLine> forwarded;
  {
    std::lock_guard<std::mutex> lock(forward_mu_);
    forwarded.swap(forwarded_);
  }
  for (ForwardedLine& f : forwarded) {
    auto it = jobs_.find(f.job_id);
    if (it == jobs_.end() || it->second.finished_sent) continue;  // Too late for its stream.
    v1::JobReport report;
    *report.mutable_log() = std::move(f.line);
    AddReportLocked(f.job_id, it->second, std::move(report));
  }
  for (auto& [id, job] : jobs_) {
    if (!job.started_sent) {
      v1::WorkerMessage& m = out.emplace_back();
      m.mutable_job_started()->set_job_id(id);
      m.mutable_job_started()->set_attempt(job.assignment.attempt());
      job.started_sent = true;
    }
    for (; job.sent < job.reports.size(); ++job.sent) {
      *out.emplace_back().mutable_report() = job.reports[job.sent];
    }
    if (job.finished && !job.finished_sent) {
      *out.emplace_back().mutable_job_finished() = *job.finished;
      job.finished_sent = true;
      job.finished_sent_at = now;
    }
  }
  return out;
}

bool WorkerAgent::Serve() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      credentials::OpenChannel(options_.server, options_.tls);
  if (!channel.ok()) {
    logging::Error(
        absl::StrCat("cannot connect to ", options_.server, ": ", channel.status().message()));
    return false;
  }
  // Re-read at every connection: a rotated token file is picked up without a restart.
  absl::StatusOr<std::string> token =
      credentials::ResolveToken(options_.token_file.empty() ? options_.token : "",
                                options_.token_file);
  if (!token.ok()) {
    logging::Error(absl::StrCat("cannot connect to ", options_.server, ": ",
                                token.status().message()));
    return false;
  }
  auto stub = v1::WorkerService::NewStub(*channel);
  auto context = std::make_shared<grpc::ClientContext>();
  credentials::AttachToken(*context, *token);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    live_context_ = context;
  }
  auto stream = stub->Connect(context.get());
  v1::WorkerMessage hello;
  {
    std::lock_guard<std::mutex> lock(mu_);
    *hello.mutable_hello() = MakeHello();
  }
  v1::ServerMessage reply;
  if (!stream->Write(hello) || !stream->Read(&reply) || !reply.has_hello()) {
    grpc::Status status = stream->Finish();
    logging::Warning(
        absl::StrCat("cannot connect to ", options_.server, ": ", status.error_message()));
    std::lock_guard<std::mutex> lock(mu_);
    live_context_.reset();
    return false;
  }
  std::vector<std::unique_ptr<EngineProcess>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped = ApplyHelloLocked(reply.hello());
  }
  dropped.clear();
  recorder_.Connected();
  logging::Info(absl::StrCat("connected to ", options_.server, " as workers/", options_.worker_id,
                             " (", reply.hello().adopted_jobs_size(), " jobs adopted)"));

  bool connected = true;
  std::thread sender([&] {
    absl::Time next_heartbeat = absl::Now();
    std::unique_lock<std::mutex> lock(mu_);
    while (connected && !stopping_) {
      std::vector<v1::WorkerMessage> out = TakeOutgoingLocked();
      if (absl::Now() >= next_heartbeat) {
        out.emplace_back().mutable_heartbeat();
        next_heartbeat = absl::Now() + heartbeat_interval_;
      }
      if (!out.empty()) {
        lock.unlock();
        bool ok = true;
        for (v1::WorkerMessage& m : out) {
          if (m.has_heartbeat() && options_.gpu_memory_used) {  // NVML, outside the lock
            for (const auto& [gpu, bytes] : options_.gpu_memory_used()) {
              (*m.mutable_heartbeat()->mutable_gpu_memory_used_bytes())[gpu] = bytes;
            }
          }
          ok = ok && stream->Write(m);
        }
        lock.lock();
        if (!ok) break;
        continue;
      }
      changed_.wait_for(lock, absl::ToChronoNanoseconds(next_heartbeat - absl::Now()));
    }
    context->TryCancel();  // Unblocks the reader when the sender stops first.
  });
  while (stream->Read(&reply)) {
    if (reply.has_assignment()) StartJob(reply.assignment());
    if (reply.has_cancel()) CancelJob(reply.cancel());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected = false;
    live_context_.reset();
  }
  recorder_.Disconnected();
  changed_.notify_all();
  sender.join();
  grpc::Status status = stream->Finish();
  logging::Warning(absl::StrCat("stream to ", options_.server, " ended: ",
                                status.ok() ? "closed by the server" : status.error_message()));
  return true;
}

void WorkerAgent::StartJob(const v1::JobAssignment& assignment) {
  const std::string id = assignment.job_id();
  const int32_t attempt = assignment.attempt();
  std::unique_ptr<EngineProcess> replaced;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end() && it->second.assignment.attempt() == attempt) return;  // Resent.
    if (it != jobs_.end()) {
      if (it->second.process) it->second.process->Cancel();
      replaced = std::move(it->second.process);
    }
    Job& job = jobs_[id];
    job = Job();
    job.assignment = assignment;
  }
  replaced.reset();
  logging::Info(
      absl::StrCat("starting attempt ", attempt, " on ",
                   assignment.gpu_indices_size() > 1
                       ? absl::StrCat("GPUs ", absl::StrJoin(assignment.gpu_indices(), ","))
                   : assignment.gpu_index() >= 0 ? absl::StrCat("GPU ", assignment.gpu_index())
                                                 : std::string("a CPU slot")),
      {id, options_.worker_id});
  EngineCallbacks callbacks{
      [this, id, attempt](v1::JobReport r) { OnReport(id, attempt, std::move(r)); },
      [this, id, attempt](v1::JobFinished f) { OnFinished(id, attempt, std::move(f)); },
      [this, id, attempt](const LayerDone& layer) { OnLayer(id, attempt, layer); }};
  recorder_.JobStarted(id, assignment.gpu_index());
  absl::StatusOr<std::unique_ptr<EngineProcess>> process = EngineProcess::Start(
      options_.engine, assignment, std::move(callbacks), options_.cancel_grace);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  if (process.ok()) {
    it->second.process = std::move(*process);
  } else {
    v1::JobFinished finished;
    finished.set_job_id(id);
    finished.set_attempt(attempt);
    finished.set_state(v1::JOB_STATE_FAILED);
    finished.mutable_error()->set_code(static_cast<int32_t>(process.status().code()));
    finished.mutable_error()->set_message(std::string(process.status().message()));
    logging::Error(absl::StrCat("cannot start the engine: ", process.status().message()),
                   {id, options_.worker_id});
    recorder_.JobFinished(id, v1::JOB_STATE_FAILED);
    it->second.finished = std::move(finished);
  }
  changed_.notify_all();
}

void WorkerAgent::CancelJob(const v1::CancelAssignment& cancel) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(cancel.job_id());
  if (it == jobs_.end() || it->second.assignment.attempt() != cancel.attempt()) return;
  logging::Info("cancel requested: stopping the engine", {cancel.job_id(), options_.worker_id});
  if (it->second.process) it->second.process->Cancel();
}

void WorkerAgent::ForwardJobLog(logging::Level level, const std::string& job_id,
                                const std::string& message) {
  static constexpr v1::LogLevel kLevels[] = {v1::LOG_LEVEL_DEBUG, v1::LOG_LEVEL_INFO,
                                             v1::LOG_LEVEL_WARNING, v1::LOG_LEVEL_ERROR};
  ForwardedLine forwarded{job_id, {}};
  forwarded.line.set_level(kLevels[static_cast<int>(level)]);
  forwarded.line.set_message(absl::StrCat("quantd-worker: ", message));
  {
    std::lock_guard<std::mutex> lock(forward_mu_);
    if (forwarded_.size() >= kMaxForwardedLines) return;  // The stream is down for long.
    forwarded_.push_back(std::move(forwarded));
  }
  // Without mu_ (the caller may hold it): the sender picks the line up at the latest with its
  // next heartbeat.
  changed_.notify_all();
}

void WorkerAgent::AddReportLocked(const std::string& job_id, Job& job, v1::JobReport report) {
  report.set_job_id(job_id);
  report.set_attempt(job.assignment.attempt());
  report.set_report_number(static_cast<int64_t>(job.reports.size()) + 1);
  job.reports.push_back(std::move(report));
  changed_.notify_all();
}

void WorkerAgent::OnReport(const std::string& job_id, int32_t attempt, v1::JobReport report) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.assignment.attempt() != attempt) return;
  if (report.has_progress()) {
    recorder_.JobProgress(job_id, report.progress().fraction());
    const v1::JobProgress& p = report.progress();
    if (p.resumed_at_layer() > 0 && !it->second.resume_logged) {
      it->second.resume_logged = true;
      logging::Info(absl::StrCat("attempt ", attempt, " resumed at layer ", p.resumed_at_layer(),
                                 " of ", p.layers_total(),
                                 ": the engine kept the layers an "
                                 "earlier attempt finished in ",
                                 it->second.assignment.spec().output_dir()),
                    {job_id, options_.worker_id});
    }
  }
  AddReportLocked(job_id, it->second, std::move(report));
}

void WorkerAgent::OnLayer(const std::string& job_id, int32_t attempt, const LayerDone& layer) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.assignment.attempt() != attempt) return;
  recorder_.JobLayerDone(job_id, layer);
}

void WorkerAgent::OnFinished(const std::string& job_id, int32_t attempt, v1::JobFinished finished) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.assignment.attempt() != attempt) return;
  const std::string& why = finished.error().message();
  logging::Info(absl::StrCat("engine finished: ", v1::JobState_Name(finished.state()),
                             why.empty() ? "" : ": ", why),
                {job_id, options_.worker_id});
  recorder_.JobFinished(job_id, finished.state());
  it->second.finished = std::move(finished);
  changed_.notify_all();
}

}  // namespace quantd::worker
