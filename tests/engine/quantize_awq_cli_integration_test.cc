// quantize-awq as a user and the worker daemon run it: the seed's validation messages, exit codes
// (0 / 1 / 2 / 3), --events=jsonl and cancellation by SIGTERM with nothing left under a final name.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_data.h"

namespace {

const std::string kBinary = std::string(QUANTD_BINARY_DIR) + "/bin/quantize-awq";
const std::string kFixture = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha");

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunCli(const std::string& args, const std::string& env = "", bool with_stderr = true) {
  RunResult r;
  const std::string cmd =
      absl::StrCat(env, " ", kBinary, " ", args, with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string TempDir(const std::string& name) {
  const std::string dir = std::string(QUANTD_BINARY_DIR) + "/quantize_awq_cli_test/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(QuantizeAwqCliTest, ModelDirThatIsNotADirectory) {
  const RunResult r =
      RunCli("--model_dir /nonexistent/model --calib_jsonl " + kFixture + "/calib.jsonl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--model_dir is not a directory: /nonexistent/model"), std::string::npos)
      << r.output;
}

TEST(QuantizeAwqCliTest, ModelDirWithoutConfigJson) {
  const std::string dir = TempDir("no_config");
  const RunResult r = RunCli("--model_dir " + dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("has no config.json"), std::string::npos) << r.output;
}

TEST(QuantizeAwqCliTest, MissingCalibrationFileGivesAHint) {
  const RunResult r =
      RunCli("--model_dir " + kFixture + "/model", "AWQ_CALIB_JSONL=/nope/calib.jsonl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("calibration file not found: /nope/calib.jsonl"), std::string::npos);
  // What the file must hold, and the subcommand that makes one.
  EXPECT_NE(r.output.find("{\"text\": \"...\"}"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("{\"input_ids\": [...]}"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("quantize-awq make-calib TEXT_FILE > calib.jsonl"), std::string::npos)
      << r.output;
}

// --trust_remote_code is accepted for the seed's interface, changes nothing, says so in --help and
// warns once however often it is given.
TEST(QuantizeAwqCliTest, TrustRemoteCodeIsAcceptedWithOneWarning) {
  const RunResult help = RunCli("--help");
  EXPECT_NE(help.output.find("quantd never executes model code"), std::string::npos) << help.output;
  const std::string warning = "--trust_remote_code has no effect";
  const RunResult plain = RunCli("--model_dir " + kFixture + "/model --calib_jsonl /nope");
  EXPECT_EQ(plain.output.find(warning), std::string::npos) << plain.output;
  const RunResult given = RunCli("--trust_remote_code --model_dir " + kFixture +
                                 "/model --no_trust_remote_code --calib_jsonl /nope "
                                 "--trust_remote_code");
  EXPECT_EQ(given.exit_code, plain.exit_code);
  const size_t first = given.output.find(warning);
  ASSERT_NE(first, std::string::npos) << given.output;
  EXPECT_EQ(given.output.find(warning, first + 1), std::string::npos) << given.output;
  EXPECT_NE(given.output.find("calibration file not found: /nope"), std::string::npos);
}

// make-calib turns prose into one {"text"} row per paragraph, which calibration reads as it is:
// `quantize-awq tokenize` (calibration's own text path) accepts every row with the demo model.
TEST(QuantizeAwqCliTest, MakeCalibWritesOneTextRowPerParagraph) {
  const std::string dir = TempDir("make_calib");
  {
    std::FILE* f = std::fopen((dir + "/book.txt").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "  Chapter One\r\n\r\nIt was a dark\n  and stormy night.\n\n\n\"Quoted\", she "
        "said \xff\n   \nLast line without newline",
        f);
    std::fclose(f);
  }
  const RunResult r = RunCli("make-calib " + dir + "/book.txt", "", /*with_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> texts;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    const nlohmann::json j = nlohmann::json::parse(std::string(line), nullptr, false);
    ASSERT_TRUE(j.is_object() && j.size() == 1 && j["text"].is_string()) << line;
    texts.push_back(j["text"]);
  }
  {
    std::FILE* f = std::fopen((dir + "/calib.jsonl").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs(r.output.c_str(), f);
    std::fclose(f);
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"Chapter One", "It was a dark and stormy night.",
                                             "\"Quoted\", she said \xEF\xBF\xBD",
                                             "Last line without newline"}));
  const std::string model = quantd::test_data::Path("models/tiny-qwen2-wp/model");
  const RunResult ids =
      RunCli("tokenize --model_dir " + model + " --chat < " + dir + "/calib.jsonl", "", false);
  EXPECT_EQ(ids.exit_code, 0) << ids.output;
  EXPECT_EQ(std::count(ids.output.begin(), ids.output.end(), '\n'), 4) << ids.output;

  EXPECT_EQ(RunCli("make-calib").exit_code, 2);
  EXPECT_EQ(RunCli("make-calib " + dir + "/missing.txt").exit_code, 1);
  const std::string blank = dir + "/blank.txt";
  std::FILE* b = std::fopen(blank.c_str(), "wb");
  ASSERT_NE(b, nullptr);
  std::fputs(" \n\n\t\n", b);
  std::fclose(b);
  const RunResult empty = RunCli("make-calib " + blank);
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.output.find("holds no text"), std::string::npos) << empty.output;
}

TEST(QuantizeAwqCliTest, DefaultCalibrationFileIsTheSeeds) {
  const RunResult r = RunCli("--model_dir " + kFixture + "/model");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("calib_8192.jsonl"), std::string::npos) << r.output;
}

TEST(QuantizeAwqCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCli("--bogus").exit_code, 2);
  EXPECT_EQ(RunCli("--num_calib abc").exit_code, 2);
  EXPECT_EQ(RunCli("--dtype float8").exit_code, 2);
  EXPECT_EQ(RunCli("--events=xml").exit_code, 2);
  const RunResult no_gpu = RunCli("--gpus 0");
  EXPECT_EQ(no_gpu.exit_code, 2);
  EXPECT_NE(no_gpu.output.find("--gpus"), std::string::npos) << no_gpu.output;
  const RunResult help = RunCli("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--no_trust_remote_code"), std::string::npos);
}

TEST(QuantizeAwqCliTest, EventsEndWithAFailedResultCarryingTheCode) {
  const RunResult r =
      RunCli("--events=jsonl --model_dir " + kFixture + "/model --calib_jsonl /nope", "", false);
  EXPECT_EQ(r.exit_code, 1);
  std::string last;
  for (size_t start = 0; start < r.output.size();) {
    size_t end = r.output.find('\n', start);
    if (end == std::string::npos) end = r.output.size();
    if (end > start) last = r.output.substr(start, end - start);
    start = end + 1;
  }
  const nlohmann::json j = nlohmann::json::parse(last, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << last;
  EXPECT_EQ(j["event"], "result");
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["code_number"], 3);
}

// How quantd-worker runs it: the options as JSON on stdin, every path beneath the allowed roots.
TEST(QuantizeAwqCliTest, OptionsOnStdinAndPathsConfinedToTheRoots) {
  const std::string dir = TempDir("roots");
  std::filesystem::create_directories(dir + "/root/out");
  std::filesystem::create_directories(dir + "/outside");
  std::filesystem::create_directory_symlink(kFixture + "/model", dir + "/root/model");
  const auto options = [&](const std::string& model) {
    const std::string path = dir + "/options.json";
    FILE* f = fopen(path.c_str(), "w");
    const std::string json = nlohmann::json({{"model_dir", model},
                                             {"output_dir", dir + "/root/out"},
                                             {"calib_jsonl", dir + "/root/calib.jsonl"},
                                             {"system_prompt", std::string(200000, 'p')},
                                             {"allowed_roots", {dir + "/root"}}})
                                 .dump();
    fwrite(json.data(), 1, json.size(), f);
    fclose(f);
    return path;
  };
  // The model is a symlink out of the root: refused before any work, naming the path.
  RunResult r = RunCli("--options_json=- --events=jsonl < " + options(dir + "/root/model"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(dir + "/root/model leads outside the allowed roots"), std::string::npos)
      << r.output;
  // Unknown keys in the options are usage errors.
  FILE* f = fopen((dir + "/bad.json").c_str(), "w");
  fputs("{\"model_dir\": \"/m\", \"frobnicate\": 1}", f);
  fclose(f);
  r = RunCli("--options_json=" + dir + "/bad.json");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown key \"frobnicate\""), std::string::npos) << r.output;
}

// The worker's metrics come from these: one "layer" event per decoder layer, in order, with its
// time and the calibration tokens it ran, and no GPU memory on the CPU backend.
TEST(QuantizeAwqCliTest, EventsReportEachLayerWithItsTimeAndTokens) {
  const std::string out = TempDir("layers") + "/out";
  const RunResult r = RunCli(absl::StrCat("--model_dir ", kFixture, "/model --output_dir ", out,
                                          " --calib_jsonl ", kFixture,
                                          "/calib.jsonl --num_calib 16 --max_seq_len 128 "
                                          "--no_chat_template --backend cpu --events=jsonl"),
                             "", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<nlohmann::json> layers;
  for (size_t start = 0; start < r.output.size();) {
    size_t end = r.output.find('\n', start);
    if (end == std::string::npos) end = r.output.size();
    nlohmann::json j = nlohmann::json::parse(r.output.substr(start, end - start), nullptr, false);
    if (!j.is_discarded() && j.value("event", "") == "layer") layers.push_back(j);
    start = end + 1;
  }
  ASSERT_EQ(layers.size(), 2u) << r.output;  // The fixture has 2 decoder layers.
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(layers[i]["layer"], i + 1);
    EXPECT_EQ(layers[i]["layers_total"], 2);
    EXPECT_GE(layers[i]["seconds"].get<double>(), 0.0);
    // Whole blocks of max_seq_len tokens, the same for every layer.
    EXPECT_GT(layers[i]["tokens"].get<int64_t>(), 0);
    EXPECT_EQ(layers[i]["tokens"].get<int64_t>() % 128, 0);
    EXPECT_EQ(layers[i]["tokens"], layers[0]["tokens"]);
    EXPECT_FALSE(layers[i].contains("gpu_memory_bytes"));
    EXPECT_FALSE(layers[i].contains("gpu_memory_peak_bytes"));
  }
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Data-parallel calibration through the whole pipeline (CPU ranks): the checkpoint of a run on
// 2 and on 3 "GPUs" is byte for byte the checkpoint of a run on one — the same decisions, rank 0's
// layers written once. The 3-rank run takes its options as quantd-worker passes them: JSON on
// stdin, "gpus" among them. OpenBLAS's Sandybridge kernels give each row the same bits whatever
// the number of rows in a call (its Haswell/Zen ones do not: tests/engine/CMakeLists.txt).
TEST(QuantizeAwqCliTest, ARunOnSeveralRanksWritesTheOneRankCheckpoint) {
  const std::string dir = TempDir("ranks");
  std::vector<std::string> weights;
  for (int gpus : {1, 2, 3}) {
    const std::string out = absl::StrCat(dir, "/out", gpus);
    std::string args = absl::StrCat("--model_dir ", kFixture, "/model --output_dir ", out,
                                    " --calib_jsonl ", kFixture,
                                    "/calib.jsonl --num_calib 16 --max_seq_len 128 "
                                    "--no_chat_template --backend cpu --gpus ",
                                    gpus);
    if (gpus == 3) {
      const std::string json = nlohmann::json({{"model_dir", kFixture + "/model"},
                                               {"output_dir", out},
                                               {"calib_jsonl", kFixture + "/calib.jsonl"},
                                               {"num_calib", 16},
                                               {"max_seq_len", 128},
                                               {"no_chat_template", true},
                                               {"backend", "cpu"},
                                               {"gpus", gpus}})
                                   .dump();
      std::ofstream(dir + "/options.json") << json;
      args = "--options_json=- < " + dir + "/options.json";
    }
    const RunResult r = RunCli(args, "OPENBLAS_CORETYPE=Sandybridge");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    weights.push_back(FileBytes(out + "/model.safetensors"));
    ASSERT_FALSE(weights.back().empty());
  }
  EXPECT_TRUE(weights[1] == weights[0]) << "2 ranks wrote another checkpoint than 1";
  EXPECT_TRUE(weights[2] == weights[0]) << "3 ranks wrote another checkpoint than 1";
}

// SIGTERM during quantization: the engine stops at the next scaling group, exits 3 with a
// "cancelled" result, and no file of the checkpoint exists under its final name.
// Every refused combination of format options exits 2 (usage) naming the flag and the rule,
// before any work, as the server refuses them at submit.
TEST(QuantizeAwqCliTest, RefusedFormatCombinationsSayWhy) {
  const std::string base = absl::StrCat("--model_dir ", kFixture, "/model --calib_jsonl ", kFixture,
                                        "/calib.jsonl --output_dir ", TempDir("refused"), "/out ");
  const struct {
    const char* flags;
    const char* says;
  } cases[] = {
      {"--zero_point false", "--zero_point: false (symmetric) needs --format compressed-tensors"},
      {"--group_size -1", "--group_size: -1 (per-channel) needs --format compressed-tensors"},
      {"--scale_dtype bfloat16", "--scale_dtype: bfloat16 needs --format compressed-tensors"},
      {"--format compressed-tensors --dtype float16 --scale_dtype bfloat16",
       "--scale_dtype: bfloat16 with --dtype float16"},
      {"--group_size 96", "--group_size: 96 is not one of 32, 64, 128 or -1"},
      {"--format marlin", "--format: expected gemm or compressed-tensors"},
      {"--zero_point maybe", "--zero_point: expected true or false"},
      {"--max_ppl_increase -1", "--max_ppl_increase: -1 is not a percentage"},
      {"--modules_to_not_convert 're:('", "the regex does not compile"},
  };
  for (const auto& c : cases) {
    const RunResult r = RunCli(base + c.flags);
    EXPECT_EQ(r.exit_code, 2) << c.flags << "\n" << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.flags << "\n" << r.output;
  }
  // With --dtype auto (the default) the output dtype is the model's rule: the scale dtype is
  // checked against it once config.json is read, before calibration.
  const RunResult r = RunCli(base + "--format compressed-tensors --scale_dtype bfloat16");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("scale_dtype: bfloat16 with output_dtype float16"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("calibration:"), std::string::npos) << r.output;
}

// quantd-worker passes the options as JSON: booleans and numbers of the format options arrive as
// their flags would, and their refusals are the flags' (exit 2).
TEST(QuantizeAwqCliTest, FormatOptionsInOptionsJson) {
  const std::string dir = TempDir("options_json");
  auto run = [&](const nlohmann::json& extra) {
    nlohmann::json o = {{"model_dir", kFixture + "/model"},
                        {"calib_jsonl", kFixture + "/calib.jsonl"},
                        {"output_dir", dir + "/out"}};
    o.update(extra);
    std::ofstream(dir + "/options.json") << o.dump();
    return RunCli("--options_json=- < " + dir + "/options.json");
  };
  RunResult r = run({{"zero_point", false}});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--zero_point: false (symmetric) needs --format compressed-tensors"),
            std::string::npos)
      << r.output;
  r = run({{"format", "compressed-tensors"}, {"max_ppl_increase", -2.5}});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--max_ppl_increase: -2.5 is not a percentage"), std::string::npos)
      << r.output;
  r = run({{"format", "compressed-tensors"}, {"scale_dtype", "auto"}});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--scale_dtype: expected float16 or bfloat16"), std::string::npos)
      << r.output;
}

// A compressed-tensors job through the CLI: symmetric, per-channel; its result event carries the
// quality report (held-out perplexities, vLLM's tensor-parallel sizes).
TEST(QuantizeAwqCliTest, CompressedTensorsJobReportsQualityInItsResultEvent) {
  const std::string out = TempDir("ct") + "/out";
  const RunResult r =
      RunCli(absl::StrCat(
                 "--model_dir ", kFixture, "/model --output_dir ", out, " --calib_jsonl ", kFixture,
                 "/calib.jsonl --num_calib 16 --max_seq_len 128 --no_chat_template "
                 "--backend cpu --format compressed-tensors --zero_point false --group_size -1 "
                 "--events=jsonl"),
             "", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t last_start = r.output.rfind('\n', r.output.size() - 2);
  const nlohmann::json result = nlohmann::json::parse(
      r.output.substr(last_start == std::string::npos ? 0 : last_start + 1), nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << r.output;
  EXPECT_EQ(result["status"], "succeeded");
  ASSERT_TRUE(result.contains("quality")) << result.dump();
  EXPECT_EQ(result["quality"]["source"], "held_out");
  EXPECT_GT(result["quality"]["perplexity_quantized"].get<double>(), 1.0);
  EXPECT_TRUE(result["quality"]["vllm_tensor_parallel_sizes"].is_array());
  std::ifstream config(out + "/config.json");
  const nlohmann::json c = nlohmann::json::parse(config, nullptr, false);
  EXPECT_EQ(c["quantization_config"]["config_groups"]["group_0"]["weights"]["strategy"], "channel");
}

TEST(QuantizeAwqCliTest, SigtermCancelsAndLeavesNoFinalFiles) {
  const std::string out = TempDir("cancelled") + "/out";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    const std::string model = kFixture + "/model", calib = kFixture + "/calib.jsonl";
    execl(kBinary.c_str(), kBinary.c_str(), "--model_dir", model.c_str(), "--output_dir",
          out.c_str(), "--calib_jsonl", calib.c_str(), "--num_calib", "16", "--max_seq_len", "128",
          "--no_chat_template", "--backend", "cpu", "--events=jsonl", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  FILE* events = fdopen(pipefd[0], "r");
  char line[8192];
  std::string last;
  bool signalled = false;
  while (fgets(line, sizeof(line), events) != nullptr) {
    last = line;
    if (!signalled && last.find("\"phase\":\"quantizing\"") != std::string::npos) {
      kill(pid, SIGTERM);
      signalled = true;
    }
  }
  fclose(events);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(signalled);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_NE(last.find("\"status\":\"cancelled\""), std::string::npos) << last;
  for (const char* name : {"model.safetensors", "config.json", "quant_report.json",
                           "quant_config.json", "modules_to_not_convert.txt"}) {
    EXPECT_FALSE(std::filesystem::exists(out + "/" + name)) << name;
  }
  if (std::filesystem::exists(out)) {
    for (const auto& entry : std::filesystem::directory_iterator(out)) {
      ADD_FAILURE() << "left behind: " << entry.path();
    }
  }
}

}  // namespace
