// service_bench: measures quantd on loopback and prints a table.
//   submit latency          sequential SubmitJob round trips (durable: SQLite fsync per job)
//   time to first event     SubmitJob sent -> first event of a WatchJob opened right after it
//   ListJobs latency        page of 50, newest first, with --jobs stored (also label-filtered)
//   memory per watcher      server RSS before/after --watchers concurrent WatchJob streams
// quantd runs as a child process with a temp state dir and no worker, so jobs stay queued.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "quantd/v1/quantization_service.grpc.pb.h"
#include "quantd_client.h"

namespace {

namespace fs = std::filesystem;

struct Stats {
  double p50, p99, mean;
};

Stats Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], sum / ms.size()};
}

long RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
  }
  return -1;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quantd service benchmark"};
  int jobs = 10000, submits = 300, watchers = 500, lists = 200;
  std::string store = "sqlite";
  app.add_option("--jobs", jobs, "Jobs stored before ListJobs is timed");
  app.add_option("--submits", submits, "Submits timed one by one");
  app.add_option("--watchers", watchers, "Concurrent WatchJob streams");
  app.add_option("--lists", lists, "ListJobs calls timed");
  app.add_option("--store", store, "sqlite or memory");
  CLI11_PARSE(app, argc, argv);

  const fs::path dir = fs::temp_directory_path() / ("quantd-bench-" + std::to_string(getpid()));
  fs::create_directories(dir / "model");
  std::ofstream(dir / "model" / "config.json")
      << R"({"hidden_size": 896, "num_hidden_layers": 24, "vocab_size": 151936,)"
      << R"( "intermediate_size": 4864, "num_attention_heads": 14, "num_key_value_heads": 2})";
  std::ofstream(dir / "calib.jsonl") << "{\"text\": \"hello\"}\n";
  const std::string port_file = (dir / "port").string();
  pid_t server = fork();
  if (server == 0) {
    int log = open((dir / "quantd.log").c_str(), O_WRONLY | O_CREAT, 0644);
    dup2(log, 2);
    std::string bin = std::string(QUANTD_BINARY_DIR) + "/bin/quantd";
    execl(bin.c_str(), bin.c_str(), "--listen=127.0.0.1:0", ("--port-file=" + port_file).c_str(),
          ("--state-dir=" + (dir / "state").string()).c_str(), ("--store=" + store).c_str(),
          "--local-worker=false", "--log-level=warning", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 300 && !fs::exists(port_file); ++i) absl::SleepFor(absl::Milliseconds(50));
  int port = 0;
  std::ifstream(port_file) >> port;
  if (port == 0) {
    std::fprintf(stderr, "quantd did not start; see %s\n", (dir / "quantd.log").c_str());
    return 1;
  }
  quantd::client::ClientOptions options;
  options.address = "127.0.0.1:" + std::to_string(port);
  auto client = std::move(*quantd::client::QuantdClient::Connect(options));
  auto request = [&](int i) {
    quantd::v1::SubmitJobRequest r;
    r.mutable_spec()->set_model_dir((dir / "model").string());
    r.mutable_spec()->set_output_dir((dir / ("out" + std::to_string(i))).string());
    r.mutable_spec()->set_calib_jsonl((dir / "calib.jsonl").string());
    (*r.mutable_spec()->mutable_labels())["shard"] = std::to_string(i % 10);
    return r;
  };
  const long rss_start = RssKiB(server);

  // Submit latency, then time to first event.
  std::vector<double> submit_ms, first_event_ms;
  for (int i = 0; i < submits; ++i) {
    absl::Time t0 = absl::Now();
    auto job = client->Submit(request(i));
    absl::Time t1 = absl::Now();
    if (!job.ok()) {
      std::fprintf(stderr, "submit: %s\n", job.status().ToString().c_str());
      return 1;
    }
    submit_ms.push_back(Ms(t1 - t0));
    absl::Time first;
    (void)client->Follow(
        job->name(), 0, [&](const quantd::v1::JobEvent&) { first = absl::Now(); }, 1);
    first_event_ms.push_back(Ms(first - t0));
  }
  // Fill up to --jobs with 8 parallel submitters.
  std::atomic<int> next{submits};
  std::vector<std::thread> fillers;
  absl::Time fill_start = absl::Now();
  for (int t = 0; t < 8; ++t) {
    fillers.emplace_back([&] {
      for (int i = next++; i < jobs; i = next++) (void)client->Submit(request(i));
    });
  }
  for (auto& t : fillers) t.join();
  const double fill_rate = (jobs - submits) / absl::ToDoubleSeconds(absl::Now() - fill_start);

  std::vector<double> list_ms, list_label_ms, list_deep_ms;
  std::string token;
  for (int i = 0; i < lists; ++i) {
    quantd::v1::ListJobsRequest first_page;
    absl::Time t0 = absl::Now();
    auto page = client->List(first_page);
    list_ms.push_back(Ms(absl::Now() - t0));
    quantd::v1::ListJobsRequest labelled;
    (*labelled.mutable_labels())["shard"] = "3";
    t0 = absl::Now();
    (void)client->List(labelled);
    list_label_ms.push_back(Ms(absl::Now() - t0));
    quantd::v1::ListJobsRequest deep;
    deep.set_page_token(token);
    t0 = absl::Now();
    auto deep_page = client->List(deep);
    list_deep_ms.push_back(Ms(absl::Now() - t0));
    token = deep_page.ok() ? deep_page->next_page_token() : "";
    if (!page.ok() || page->jobs_size() != 50) {
      std::fprintf(stderr, "ListJobs did not return a page of 50\n");
      return 1;
    }
  }

  // Memory with concurrent watchers: each watches its own queued job (streams stay open).
  absl::SleepFor(absl::Milliseconds(500));
  const long rss_before_watch = RssKiB(server);
  auto list = client->List([] {
    quantd::v1::ListJobsRequest r;
    r.set_page_size(1000);
    return r;
  }());
  std::atomic<int> connected{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts(watchers);
  std::vector<std::thread> threads;
  auto channel = grpc::CreateChannel(options.address, grpc::InsecureChannelCredentials());
  auto stub = quantd::v1::QuantizationService::NewStub(channel);
  for (int i = 0; i < watchers; ++i) {
    contexts[i] = std::make_unique<grpc::ClientContext>();
    threads.emplace_back([&, i] {
      quantd::v1::WatchJobRequest r;
      r.set_name(list->jobs(i % list->jobs_size()).name());
      auto reader = stub->WatchJob(contexts[i].get(), r);
      quantd::v1::JobEvent e;
      if (reader->Read(&e)) ++connected;
      while (reader->Read(&e)) {
      }
      (void)reader->Finish();
    });
  }
  for (int i = 0; i < 600 && connected < watchers; ++i) absl::SleepFor(absl::Milliseconds(50));
  absl::SleepFor(absl::Seconds(1));
  const long rss_watching = RssKiB(server);
  const int watching = connected;
  for (auto& c : contexts) c->TryCancel();
  for (auto& t : threads) t.join();

  Stats submit = Summarize(submit_ms), first = Summarize(first_event_ms), l = Summarize(list_ms),
        ll = Summarize(list_label_ms), ld = Summarize(list_deep_ms);
  std::printf("quantd service benchmark (loopback, store=%s)\n\n", store.c_str());
  std::printf("| measurement | p50 | p99 | mean |\n|---|---|---|---|\n");
  std::printf("| submit latency (%d sequential) | %.2f ms | %.2f ms | %.2f ms |\n", submits,
              submit.p50, submit.p99, submit.mean);
  std::printf(
      "| time to first event (submit -> first WatchJob event) | %.2f ms | %.2f ms | %.2f ms |\n",
      first.p50, first.p99, first.mean);
  std::printf("| ListJobs, first page of 50, %d jobs stored | %.2f ms | %.2f ms | %.2f ms |\n",
              jobs, l.p50, l.p99, l.mean);
  std::printf("| ListJobs, label filter (1 in 10 match), %d jobs | %.2f ms | %.2f ms | %.2f ms |\n",
              jobs, ll.p50, ll.p99, ll.mean);
  std::printf("| ListJobs, walking pages with page_token | %.2f ms | %.2f ms | %.2f ms |\n", ld.p50,
              ld.p99, ld.mean);
  std::printf("\n| server memory | value |\n|---|---|\n");
  std::printf("| RSS at start | %.1f MiB |\n", rss_start / 1024.0);
  std::printf("| RSS with %d jobs stored, no watcher | %.1f MiB |\n", jobs,
              rss_before_watch / 1024.0);
  std::printf("| RSS with %d concurrent watchers | %.1f MiB |\n", watching, rss_watching / 1024.0);
  std::printf("| per watcher | %.1f KiB |\n",
              watching > 0 ? double(rss_watching - rss_before_watch) / watching : 0.0);
  std::printf("\nbulk submit rate (8 clients): %.0f jobs/s\n", fill_rate);
  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  fs::remove_all(dir);
  return watching == watchers ? 0 : 1;
}
