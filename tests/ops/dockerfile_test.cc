// Static checks of the Dockerfile (no Docker engine runs here or in CI): the properties the
// operations issue asks for, read from the Dockerfile's instructions stage by stage.
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

struct Instruction {
  std::string keyword;  // upper case: FROM, RUN, COPY, ...
  std::string arguments;
};

struct Stage {
  std::string base;  // image or earlier stage, ARG defaults substituted
  std::string name;
  std::vector<Instruction> instructions;
  std::string Text(const std::string& keyword) const {
    std::string all;
    for (const Instruction& i : instructions) {
      if (i.keyword == keyword) all += i.arguments + "\n";
    }
    return all;
  }
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Splits a Dockerfile into stages: joins backslash continuations, drops comments, and replaces
// ${NAME} of global ARGs (declared before the first FROM) by their defaults in FROM lines.
std::vector<Stage> ParseDockerfile(const std::string& text) {
  std::vector<Stage> stages;
  std::map<std::string, std::string> global_args;
  std::string logical;
  std::istringstream lines(text);
  std::string line;
  auto flush = [&] {
    absl::string_view stripped = absl::StripAsciiWhitespace(logical);
    if (stripped.empty()) return;
    std::vector<std::string> parts = absl::StrSplit(stripped, absl::MaxSplits(' ', 1));
    Instruction instruction{absl::AsciiStrToUpper(parts[0]), parts.size() > 1 ? parts[1] : ""};
    logical.clear();
    if (instruction.keyword == "FROM") {
      for (const auto& [name, value] : global_args) {
        absl::StrReplaceAll({{"${" + name + "}", value}}, &instruction.arguments);
      }
      std::vector<std::string> words =
          absl::StrSplit(instruction.arguments, ' ', absl::SkipEmpty());
      Stage stage;
      stage.base = words.empty() ? "" : words[0];
      if (words.size() == 3 && absl::AsciiStrToUpper(words[1]) == "AS") stage.name = words[2];
      stages.push_back(stage);
      return;
    }
    if (stages.empty()) {
      if (instruction.keyword == "ARG") {
        std::vector<std::string> kv =
            absl::StrSplit(instruction.arguments, absl::MaxSplits('=', 1));
        global_args[kv[0]] = kv.size() > 1 ? kv[1] : "";
      }
      return;
    }
    stages.back().instructions.push_back(instruction);
  };
  while (std::getline(lines, line)) {
    absl::string_view view = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(view, "#")) continue;  // comments, including inside continuations
    if (absl::EndsWith(line, "\\")) {
      logical += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    logical += line;
    flush();
  }
  flush();
  return stages;
}

class DockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = ReadFile(QUANTD_SOURCE_DIR "/Dockerfile");
    ASSERT_FALSE(text_.empty()) << "Dockerfile missing at the repository root";
    stages_ = ParseDockerfile(text_);
    ASSERT_GE(stages_.size(), 2u);
  }

  const Stage* Find(const std::string& name) const {
    for (const Stage& stage : stages_) {
      if (stage.name == name) return &stage;
    }
    return nullptr;
  }

  // The stage and every stage it is built FROM, innermost last.
  std::vector<const Stage*> Lineage(const Stage& stage) const {
    std::vector<const Stage*> chain{&stage};
    while (const Stage* parent = Find(chain.back()->base)) chain.push_back(parent);
    return chain;
  }

  // The stage the final image's binaries are copied from.
  const Stage* BuildStage() const {
    for (const Instruction& i : stages_.back().instructions) {
      if (i.keyword == "COPY" && absl::StartsWith(i.arguments, "--from=")) {
        std::string from = std::string(absl::StripPrefix(i.arguments, "--from="));
        return Find(from.substr(0, from.find(' ')));
      }
    }
    return nullptr;
  }

  std::string text_;
  std::vector<Stage> stages_;
};

TEST_F(DockerfileTest, EveryStageIsDebian12LikeCi) {
  for (const Stage& stage : stages_) {
    const Stage* root = Lineage(stage).back();
    EXPECT_EQ(root->base, "debian:12") << "stage " << stage.name;
  }
  // NVIDIA's CUDA repository for Debian 12 is configured for both stages.
  EXPECT_THAT(text_, HasSubstr("developer.download.nvidia.com/compute/cuda/repos/debian12/"));
}

TEST_F(DockerfileTest, BuildStageUsesTheCiInstallScriptAndBuildsEveryBinary) {
  const Stage* build = BuildStage();
  ASSERT_NE(build, nullptr) << "the final stage must COPY --from=<build stage>";
  std::string run = build->Text("RUN");
  EXPECT_THAT(run, HasSubstr("scripts/install-deps.sh"));
  EXPECT_THAT(run, HasSubstr("nvcc"));
  for (const char* target : {"quantd", "quantd-worker", "quantctl", "quantize-awq"}) {
    EXPECT_THAT(run, HasSubstr(std::string(" ") + target)) << target;
  }
  EXPECT_THAT(run, HasSubstr("-DQUANTD_CUDA=ON"));
  EXPECT_THAT(run, HasSubstr("deploy/docker/runtime-packages.sh"));
}

TEST_F(DockerfileTest, FinalStageHasNoBuildTools) {
  const Stage& final_stage = stages_.back();
  const Stage* build = BuildStage();
  ASSERT_NE(build, nullptr);
  for (const Stage* stage : Lineage(final_stage)) {
    ASSERT_NE(stage, build) << "the final stage must not derive from the build stage";
    EXPECT_THAT(stage->base, ::testing::Not(HasSubstr("devel")));
    std::string run = stage->Text("RUN");
    for (const char* tool : {"install-deps.sh", "build-essential", " gcc", " g++", "clang", "cmake",
                             "ninja", "-dev", "nvcc", "cuda-toolkit", " make"}) {
      EXPECT_THAT(run, ::testing::Not(HasSubstr(tool))) << "stage " << stage->name;
    }
  }
  std::string copies = final_stage.Text("COPY");
  for (const char* binary : {"/quantd ", "/quantd-worker ", "/quantctl ", "/quantize-awq "}) {
    EXPECT_THAT(copies, HasSubstr(binary)) << binary;
  }
}

TEST_F(DockerfileTest, FinalStageRunsAsNonRootWithAHealthcheck) {
  const Stage& final_stage = stages_.back();
  std::string user;  // the last USER wins
  for (const Instruction& i : final_stage.instructions) {
    if (i.keyword == "USER") user = std::string(absl::StripAsciiWhitespace(i.arguments));
  }
  ASSERT_FALSE(user.empty()) << "the final stage needs a USER";
  std::string name = user.substr(0, user.find(':'));
  EXPECT_NE(name, "root");
  EXPECT_NE(name, "0");
  std::string healthcheck = final_stage.Text("HEALTHCHECK");
  EXPECT_THAT(healthcheck, HasSubstr("/healthz"));
  EXPECT_THAT(healthcheck, HasSubstr("CMD"));
  // The curl the healthcheck runs is installed in the final stage.
  EXPECT_THAT(final_stage.Text("RUN"), HasSubstr("curl"));
}

TEST(DockerignoreTest, KeepsLocalStateOutOfTheContext) {
  std::string text = ReadFile(QUANTD_SOURCE_DIR "/.dockerignore");
  std::vector<std::string> patterns = absl::StrSplit(text, '\n');
  EXPECT_THAT(patterns, Contains(".git"));
  EXPECT_THAT(patterns, Contains("build*/"));
  EXPECT_THAT(patterns, Contains("**/node_modules/"));
}

TEST(RuntimePackagesTest, NamesThePackagesOwningTheLibrariesAnExecutableLoads) {
  // Runs the script the build stage uses on an executable of this build.
  std::string command =
      "bash " QUANTD_SOURCE_DIR "/deploy/docker/runtime-packages.sh " QUANTD_BINARY_DIR
      "/bin/quantd 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[1024];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  std::vector<std::string> packages = absl::StrSplit(output, '\n', absl::SkipEmpty());
  EXPECT_THAT(packages, Contains("libc6"));
  EXPECT_THAT(packages, Contains("libcpp-httplib0.11"));
  for (const std::string& package : packages) {
    EXPECT_FALSE(absl::EndsWith(package, "-dev")) << package;
  }
}

}  // namespace
