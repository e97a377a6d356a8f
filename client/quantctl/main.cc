// quantctl: the command line of quantd. `quantctl --help` lists the commands; exit codes are in
// commands.h (0 ok, 1 job failed, 2 usage/rejected, 3 job cancelled, 4 server unreachable).
#include <unistd.h>

#include "CLI/CLI.hpp"
#include "commands.h"
#include "submit_flags.h"

int main(int argc, char** argv) {
  using namespace quantd;
  CLI::App app{"quantctl: submit, watch and manage quantd jobs", "quantctl"};
  app.require_subcommand(1);
  app.fallthrough();  // Global options (-o, --address) may follow the subcommand.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  client::ClientOptions options;
  std::string output = "text";
  app.add_option("--address", options.address, "quantd address host:port")
      ->envname("QUANTD_ADDRESS")
      ->capture_default_str();
  app.add_option("--tls-ca", options.tls.ca, "CA certificate (PEM): use TLS")
      ->envname("QUANTD_TLS_CA");
  app.add_option("--tls-cert", options.tls.cert, "Client certificate (PEM) for mTLS")
      ->envname("QUANTD_CLIENT_TLS_CERT");
  app.add_option("--tls-key", options.tls.key, "Its private key (PEM)")
      ->envname("QUANTD_CLIENT_TLS_KEY");
  app.add_option("--tls-server-name", options.tls.server_name,
                 "Name to verify in quantd's certificate (default: the host of --address)")
      ->envname("QUANTD_TLS_SERVER_NAME");
  std::string token, token_file;
  app.add_option("--token", token,
                 "Bearer token (prefer QUANTD_TOKEN or --token-file: flags are visible in ps)")
      ->envname("QUANTD_TOKEN");
  app.add_option("--token-file", token_file, "File holding the bearer token")
      ->envname("QUANTD_TOKEN_FILE");
  app.add_option("-o,--output", output, "text or json")->check(CLI::IsMember({"text", "json"}));
  std::string job;
  bool follow = false, all = false;
  int64_t after = 0;

  CLI::App* submit = app.add_subcommand("submit", "Submit a job (--follow: watch it to the end)");
  quantctl::SubmitFlags submit_flags;
  quantctl::AddSubmitFlags(submit, &submit_flags);
  submit->add_flag("-f,--follow", follow,
                   "Stream progress until the job ends, then print artifacts");
  CLI::App* get = app.add_subcommand("get", "Show a job");
  get->add_option("job", job, "Job name or id")->required();
  CLI::App* list = app.add_subcommand("list", "List jobs, newest first");
  v1::ListJobsRequest list_request;
  std::vector<std::string> states, list_labels;
  int page_size = 50;
  list->add_option("--state", states, "Only these states (queued, running, failed, ...)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  list->add_option("--label", list_labels, "Only jobs with key=value (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  list->add_option("--page-size", page_size, "Jobs per page")->capture_default_str();
  list->add_flag("--all", all, "Fetch every page");
  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a job");
  cancel->add_option("job", job, "Job name or id")->required();
  CLI::App* logs = app.add_subcommand("logs", "Print a job's events (-f: follow)");
  logs->add_option("job", job, "Job name or id")->required();
  logs->add_flag("-f,--follow", follow, "Keep streaming until the job ends (resumes after drops)");
  logs->add_option("--after", after, "Only events after this sequence number");
  CLI::App* workers = app.add_subcommand("workers", "List workers and their GPUs");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : quantctl::kUsage;
  }
  quantctl::Output out{output == "json", isatty(STDOUT_FILENO) == 1};
  absl::StatusOr<std::string> resolved = credentials::ResolveToken(token, token_file);
  if (!resolved.ok()) return quantctl::ReportError(resolved.status());
  options.token = *resolved;
  auto client = client::QuantdClient::Connect(options);
  if (!client.ok()) return quantctl::ReportError(client.status());
  if (*submit) {
    v1::SubmitJobRequest request;
    if (absl::Status s = quantctl::BuildSubmitRequest(submit_flags, &request); !s.ok()) {
      return quantctl::ReportError(s);
    }
    return quantctl::SubmitCommand(**client, request, follow, out);
  }
  if (*get) return quantctl::GetCommand(**client, job, out);
  if (*list) {
    if (absl::Status s = quantctl::BuildListRequest(states, list_labels, page_size, &list_request);
        !s.ok()) {
      return quantctl::ReportError(s);
    }
    return quantctl::ListCommand(**client, list_request, all, out);
  }
  if (*cancel) return quantctl::CancelCommand(**client, job, out);
  if (*logs) return quantctl::LogsCommand(**client, job, follow, after, out);
  if (*workers) return quantctl::WorkersCommand(**client, out);
  return quantctl::kUsage;
}
