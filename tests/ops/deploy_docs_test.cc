// Every repository path docs/deploy.md names exists: an operator following it never meets a file
// that is not there.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

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

TEST(DeployDocsTest, EveryNamedPathExists) {
  std::ifstream in(QUANTD_SOURCE_DIR "/docs/deploy.md");
  ASSERT_TRUE(in) << "docs/deploy.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> paths = PathsNamedIn(text.str());
  // The guide names the Dockerfile, compose file, overlays, manifests and test tooling.
  EXPECT_GE(paths.size(), 25u);
  for (const std::string& path : paths) {
    // Markdown files are linked relative to docs/.
    std::filesystem::path root = QUANTD_SOURCE_DIR;
    bool exists =
        std::filesystem::exists(root / path) ||
        (path.find('/') == std::string::npos && std::filesystem::exists(root / "docs" / path));
    EXPECT_TRUE(exists) << "docs/deploy.md names " << path << ", which does not exist";
  }
}

TEST(DeployDocsTest, ThePathPatternFindsWhatItShould) {
  std::set<std::string> paths = PathsNamedIn(
      "Run `kubectl apply -k deploy/overlays/production` then see (metrics.md), "
      "edit deploy/base/x.yaml, and the Dockerfile. Not /models or https://x/deploy/y.");
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("deploy/overlays/production", "metrics.md",
                                                     "deploy/base/x.yaml", "Dockerfile"));
}

}  // namespace
