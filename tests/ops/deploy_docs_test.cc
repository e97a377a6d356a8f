// Every repository path the operator-facing pages (docs/deploy.md, docs/metrics.md, README.md)
// name exists: an operator following them never meets a file that is not there.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

// Words that start with one of the repository's top-level directories or name a root file.
const std::regex kRepoPath(
    R"((^|[\s`(|=\[])((deploy|docs|scripts|tests|common|server|worker|client|proto|bench|demo|cmake)/[A-Za-z0-9_./-]*|Dockerfile|docker-compose\.yml|\.dockerignore|Makefile|[a-z-]+\.md)(?=$|[\s`),|:;.\]]))");

std::set<std::string> PathsNamedIn(const std::string& text) {
  std::set<std::string> paths;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kRepoPath);
       it != std::sregex_iterator(); ++it) {
    std::string path = (*it)[2];
    while (!path.empty() && (path.back() == '.' || path.back() == ',')) path.pop_back();
    paths.insert(path);
  }
  return paths;
}

// The paths `page` names that do not exist; `count` gets how many it names.
std::vector<std::string> MissingPathsIn(const std::string& page, size_t* count) {
  std::ifstream in(std::string(QUANTD_SOURCE_DIR "/") + page);
  EXPECT_TRUE(in) << page << " is missing";
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> paths = PathsNamedIn(text.str());
  *count = paths.size();
  std::vector<std::string> missing;
  for (const std::string& path : paths) {
    // Markdown files are linked relative to docs/.
    std::filesystem::path root = QUANTD_SOURCE_DIR;
    bool exists =
        std::filesystem::exists(root / path) ||
        (path.find('/') == std::string::npos && std::filesystem::exists(root / "docs" / path));
    if (!exists) missing.push_back(path);
  }
  return missing;
}

TEST(DeployDocsTest, EveryNamedPathExists) {
  size_t count = 0;
  EXPECT_THAT(MissingPathsIn("docs/deploy.md", &count), ::testing::IsEmpty());
  // The guide names the Dockerfile, compose file, overlays, manifests and test tooling.
  EXPECT_GE(count, 25u);
  EXPECT_THAT(MissingPathsIn("docs/metrics.md", &count), ::testing::IsEmpty());
  EXPECT_GE(count, 10u);  // The metrics module, the wiring in both processes, the dashboard.
  EXPECT_THAT(MissingPathsIn("README.md", &count), ::testing::IsEmpty());
  EXPECT_GE(count, 10u);
}

TEST(DeployDocsTest, ThePathPatternFindsWhatItShould) {
  std::set<std::string> paths = PathsNamedIn(
      "Run `kubectl apply -k deploy/overlays/production` then see (metrics.md), "
      "edit deploy/base/x.yaml, and the Dockerfile. Not /models or https://x/deploy/y.");
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("deploy/overlays/production", "metrics.md",
                                                     "deploy/base/x.yaml", "Dockerfile"));
}

}  // namespace
