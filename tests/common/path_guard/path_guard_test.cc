// Confined opens beneath allowed roots: both resolvers (openat2 and the O_NOFOLLOW walk used on
// kernels without it) refuse "..", absolute paths outside, and symlinks out of the roots, including
// a directory swapped for a symlink after it was checked.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "path_guard/confined_io.h"
#include "path_guard/roots.h"

namespace quantd::path_guard {
namespace {

namespace fs = std::filesystem;

class PathGuardTest : public ::testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    if (GetParam() == Resolver::kOpenat2 && !KernelHasOpenat2()) GTEST_SKIP() << "no openat2";
    base_ = fs::temp_directory_path() / ("quantd-path-guard-" + std::to_string(getpid()) + "-" +
                                         std::to_string(static_cast<int>(GetParam())));
    fs::remove_all(base_);
    fs::create_directories(root() / "models/m");
    fs::create_directories(outside());
    std::ofstream(root() / "models/m/config.json") << "{}";
    std::ofstream(outside() / "secret") << "secret";
    auto roots = Roots::Open({root().string()}, GetParam());
    ASSERT_TRUE(roots.ok()) << roots.status();
    roots_ = std::move(*roots);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  fs::path root() const { return base_ / "root"; }
  fs::path outside() const { return base_ / "outside"; }
  std::string In(const std::string& relative) const { return (root() / relative).string(); }
  bool Walk() const { return GetParam() == Resolver::kWalk; }

  fs::path base_;
  Roots roots_;
};

TEST_P(PathGuardTest, OpensFilesBeneathTheRoot) {
  int fd = roots_.OpenFile(In("models/m/config.json"), O_RDONLY);
  ASSERT_GE(fd, 0) << ErrorText(errno);
  close(fd);
  fd = roots_.OpenFile(In("models/./m/config.json"), O_RDONLY);
  ASSERT_GE(fd, 0) << ErrorText(errno);
  close(fd);
  EXPECT_TRUE(roots_.Contains(In("models")));
}

TEST_P(PathGuardTest, DotDotAndPathsOutsideAreRefused) {
  EXPECT_LT(roots_.OpenFile(In("models/../../outside/secret"), O_RDONLY), 0);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_LT(roots_.OpenFile((outside() / "secret").string(), O_RDONLY), 0);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_LT(roots_.OpenFile("relative/path", O_RDONLY), 0);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_FALSE(roots_.Contains((outside() / "secret").string()));
  EXPECT_FALSE(roots_.Contains(root().string() + "-sibling/x"));  // Not a prefix match.
  EXPECT_NE(ErrorText(EXDEV).find("outside the allowed roots"), std::string::npos);
}

TEST_P(PathGuardTest, SymlinksOutOfTheRootAreNotFollowed) {
  fs::create_directory_symlink(outside(), root() / "escape");
  fs::create_symlink(outside() / "secret", root() / "models/m/tokenizer.json");
  fs::create_symlink("/etc/passwd", root() / "passwd");
  for (const std::string& path :
       {In("escape/secret"), In("models/m/tokenizer.json"), In("passwd")}) {
    EXPECT_LT(roots_.OpenFile(path, O_RDONLY), 0) << path;
    EXPECT_EQ(errno, Walk() ? ELOOP : EXDEV) << path;
  }
}

TEST_P(PathGuardTest, SymlinksWithinTheRootFollowOnlyWithOpenat2) {
  // The Hugging Face cache layout: snapshot files are relative links to ../../blobs.
  fs::create_directories(root() / "blobs");
  std::ofstream(root() / "blobs/abc") << "weights";
  fs::create_symlink("../../blobs/abc", root() / "models/m/model.safetensors");
  const int fd = roots_.OpenFile(In("models/m/model.safetensors"), O_RDONLY);
  if (Walk()) {
    EXPECT_LT(fd, 0);
    EXPECT_EQ(errno, ELOOP);
  } else {
    ASSERT_GE(fd, 0) << ErrorText(errno);
    close(fd);
  }
}

TEST_P(PathGuardTest, OutputDirectorySwappedForASymlinkAfterTheCheckCannotEscape) {
  ASSERT_EQ(roots_.MakeDirectories(In("out/job")), 0) << ErrorText(errno);
  ASSERT_TRUE(fs::is_directory(root() / "out/job"));
  // After the submit-time check: the output directory becomes a symlink to outside.
  fs::remove_all(root() / "out/job");
  fs::create_directory_symlink(outside(), root() / "out/job");
  EXPECT_LT(roots_.OpenFile(In("out/job/model.safetensors"), O_WRONLY | O_CREAT | O_TRUNC, 0644),
            0);
  EXPECT_LT(roots_.MakeDirectories(In("out/job/sub")), 0);
  EXPECT_LT(roots_.Unlink(In("out/job/secret")), 0);
  EXPECT_LT(roots_.Rename(In("models/m/config.json"), In("out/job/config.json")), 0);
  EXPECT_FALSE(fs::exists(outside() / "model.safetensors"));
  EXPECT_FALSE(fs::exists(outside() / "sub"));
  EXPECT_TRUE(fs::exists(outside() / "secret"));
  EXPECT_FALSE(fs::exists(outside() / "config.json"));
  // A parent swapped likewise.
  fs::create_directories(root() / "a");
  fs::rename(root() / "a", root() / "a-old");
  fs::create_directory_symlink(outside(), root() / "a");
  EXPECT_LT(roots_.OpenFile(In("a/new"), O_WRONLY | O_CREAT, 0644), 0);
  EXPECT_FALSE(fs::exists(outside() / "new"));
}

TEST_P(PathGuardTest, CreatesRenamesAndRemovesBeneathTheRoot) {
  ASSERT_EQ(roots_.MakeDirectories(In("out/a/b")), 0) << ErrorText(errno);
  const int fd = roots_.OpenFile(In("out/a/b/.f.quantd-tmp"), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0) << ErrorText(errno);
  ASSERT_EQ(write(fd, "x", 1), 1);
  close(fd);
  ASSERT_EQ(roots_.Rename(In("out/a/b/.f.quantd-tmp"), In("out/a/b/f")), 0) << ErrorText(errno);
  EXPECT_TRUE(fs::exists(root() / "out/a/b/f"));
  ASSERT_EQ(roots_.Unlink(In("out/a/b/f")), 0) << ErrorText(errno);
  ASSERT_EQ(roots_.Unlink(In("out/a/b"), AT_REMOVEDIR), 0) << ErrorText(errno);
  EXPECT_FALSE(fs::exists(root() / "out/a/b"));
  EXPECT_LT(roots_.Unlink(root().string(), AT_REMOVEDIR), 0);  // Never the root itself.
}

TEST_P(PathGuardTest, OverlongNamesFailWithAnErrorNotACrash) {
  EXPECT_LT(roots_.OpenFile(In(std::string(300, 'x')), O_RDONLY), 0);
  EXPECT_EQ(errno, ENAMETOOLONG);
  std::string deep;
  for (int i = 0; i < 800; ++i) deep += "abcdefg/";
  EXPECT_LT(roots_.OpenFile(In(deep + "f"), O_RDONLY), 0);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, PathGuardTest,
                         ::testing::Values(Resolver::kOpenat2, Resolver::kWalk),
                         [](const auto& info) {
                           return info.param == Resolver::kWalk ? "Walk" : "Openat2";
                         });

TEST(RootsTest, RootsMustBeExistingAbsoluteDirectories) {
  EXPECT_EQ(Roots::Open({"relative"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Roots::Open({"/nonexistent/quantd-root"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Roots().OpenFile("/etc/passwd", O_RDONLY), -1);
  EXPECT_EQ(errno, EXDEV);
}

TEST(RootsTest, ARootReachedThroughASymlinkMatchesBothSpellings) {
  const fs::path base = fs::temp_directory_path() / ("quantd-roots-" + std::to_string(getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "real");
  std::ofstream(base / "real/f") << "x";
  fs::create_directory_symlink(base / "real", base / "link");
  auto roots = Roots::Open({(base / "link").string()});
  ASSERT_TRUE(roots.ok()) << roots.status();
  for (const fs::path& p : {base / "link/f", base / "real/f"}) {
    const int fd = roots->OpenFile(p.string(), O_RDONLY);
    EXPECT_GE(fd, 0) << p;
    if (fd >= 0) close(fd);
  }
  fs::remove_all(base);
}

TEST(RootsTest, APathSpelledThroughASymlinkIsAnchoredWhereItReallyIs) {
  const fs::path base = fs::temp_directory_path() / ("quantd-anchor-" + std::to_string(getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "root/models/m");
  fs::create_directories(base / "outside");
  std::ofstream(base / "root/models/m/config.json") << "{}";
  fs::create_directory_symlink(base / "root/models", base / "alias");  // Leads into the root.
  fs::create_directory_symlink(base / "outside", base / "root/models/escape");
  fs::create_directory_symlink(base / "outside", base / "elsewhere");
  auto roots = Roots::Open({(base / "root").string()});
  ASSERT_TRUE(roots.ok()) << roots.status();
  int fd = roots->OpenFile((base / "alias/m/config.json").string(), O_RDONLY);
  EXPECT_GE(fd, 0) << ErrorText(errno);
  if (fd >= 0) close(fd);
  EXPECT_EQ(roots->MakeDirectories((base / "alias/m/out").string()), 0) << ErrorText(errno);
  EXPECT_TRUE(fs::is_directory(base / "root/models/m/out"));
  // Through the alias, then out again: the deepest existing directory is outside.
  EXPECT_LT(roots->OpenFile((base / "alias/escape/new").string(), O_WRONLY | O_CREAT, 0644), 0);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_LT(roots->MakeDirectories((base / "elsewhere/x").string()), 0);
  EXPECT_FALSE(roots->Contains((base / "elsewhere/x").string()));
  EXPECT_TRUE(fs::is_empty(base / "outside"));
  fs::remove_all(base);
}

TEST(ConfinedIoTest, UnconfinedStreamsReadFiles) {
  const fs::path file = fs::temp_directory_path() / ("quantd-confined-" + std::to_string(getpid()));
  std::ofstream(file) << "one\ntwo\n";
  auto in = OpenInputStream(file.string());
  ASSERT_NE(in, nullptr);
  std::string a, b;
  std::getline(*in, a);
  std::getline(*in, b);
  EXPECT_EQ(a, "one");
  EXPECT_EQ(b, "two");
  EXPECT_EQ(OpenInputStream("/nonexistent/quantd"), nullptr);
  EXPECT_EQ(errno, ENOENT);
  fs::remove(file);
}

}  // namespace
}  // namespace quantd::path_guard
