// docs/service.md's flag tables and the processes' --help agree: every flag quantd and
// quantd-worker accept is in the page with the environment variable it really reads, and
// quantd-worker's variables follow the rule its header states (QUANTD_<FLAG>, --server:
// QUANTD_ADDRESS).
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

// flag -> environment variable, as CLI11 prints them: "  --flag TYPE=default (Env:NAME)".
std::map<std::string, std::string> FlagsFromHelp(const std::string& binary) {
  const std::string command = std::string(QUANTD_BINARY_DIR) + "/bin/" + binary + " --help";
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  std::string out;
  char buffer[4096];
  for (size_t n; pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    out.append(buffer, n);
  }
  if (pipe != nullptr) {
    EXPECT_EQ(pclose(pipe), 0) << command;
  }
  std::map<std::string, std::string> flags;
  const std::regex line(R"(^  (--[a-z0-9-]+)\b.*\(Env:([A-Z0-9_]+)\))");
  for (absl::string_view view : absl::StrSplit(out, '\n')) {
    const std::string l(view);
    std::smatch m;
    if (std::regex_search(l, m, line)) flags[m[1]] = m[2];
  }
  EXPECT_GE(flags.size(), 5u) << command << " printed:\n" << out;
  return flags;
}

// flag -> environment variable from the rows of the table under `heading` in docs/service.md:
// "| `--a`, `--b` | `ENV_A`, `ENV_B` | ...".
std::map<std::string, std::string> FlagsFromDocs(const std::string& heading) {
  std::ifstream in(QUANTD_SOURCE_DIR "/docs/service.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string page = text.str();
  const size_t start = page.find(heading);
  EXPECT_NE(start, std::string::npos) << heading;
  std::map<std::string, std::string> flags;
  if (start == std::string::npos) return flags;
  bool in_table = false;
  for (absl::string_view l : absl::StrSplit(page.substr(start), '\n')) {
    if (!absl::StartsWith(l, "|")) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    std::vector<std::string> cells = absl::StrSplit(l, '|');
    if (cells.size() < 4) continue;
    std::vector<std::string> names = absl::StrSplit(absl::StripAsciiWhitespace(cells[1]), ", ");
    std::vector<std::string> envs = absl::StrSplit(absl::StripAsciiWhitespace(cells[2]), ", ");
    if (names.size() != envs.size()) continue;
    for (size_t i = 0; i < names.size(); ++i) {
      std::string name(absl::StripPrefix(absl::StripSuffix(names[i], "`"), "`"));
      std::string env(absl::StripPrefix(absl::StripSuffix(envs[i], "`"), "`"));
      if (name.size() > 2 && absl::StartsWith(name, "--") && absl::ascii_islower(name[2])) {
        flags[name] = env;  // not the |---| separator row
      }
    }
  }
  return flags;
}

TEST(FlagDocsTest, WorkerFlagsReadQuantdFlagNamedVariables) {
  for (const auto& [flag, env] : FlagsFromHelp("quantd-worker")) {
    const std::string want =
        flag == "--server"
            ? "QUANTD_ADDRESS"
            : "QUANTD_" + absl::AsciiStrToUpper(absl::StrReplaceAll(flag.substr(2), {{"-", "_"}}));
    EXPECT_EQ(env, want) << flag;
  }
}

TEST(FlagDocsTest, ServiceDocsListEveryWorkerFlagWithItsVariable) {
  EXPECT_EQ(FlagsFromDocs("### quantd-worker flags"), FlagsFromHelp("quantd-worker"));
}

TEST(FlagDocsTest, ServiceDocsListEveryServerFlagWithItsVariable) {
  EXPECT_EQ(FlagsFromDocs("### quantd flags"), FlagsFromHelp("quantd"));
}

}  // namespace
