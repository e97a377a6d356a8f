// The server's checks of what a request carries: values echoed bounded and escaped, strings that
// are not UTF-8 named by their field, paths that never throw, loopback detection for the secure
// defaults.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bounded_text.h"
#include "listen_security.h"
#include "path_check.h"
#include "request_parsing.h"

namespace quantd::server {
namespace {

namespace fs = std::filesystem;

TEST(BoundedTextTest, QuotesBoundAndEscape) {
  EXPECT_EQ(Quoted("abc"), "\"abc\"");
  EXPECT_EQ(Quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Quoted(std::string("a\xff\n", 3)), "\"a\\xff\\x0a\"");
  EXPECT_EQ(Quoted("\xe4\xbd\xa0"), "\"\xe4\xbd\xa0\"");  // Valid UTF-8 stays.
  const std::string quoted = Quoted(std::string(10000, 'x'));
  EXPECT_LT(quoted.size(), kMaxEchoedBytes + 40);
  EXPECT_NE(quoted.find("(10000 bytes)"), std::string::npos);
  EXPECT_EQ(FirstInvalidUtf8("ok \xe2\x82\xac"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("ab\xc0\xaf"), 2u);          // Overlong.
  EXPECT_EQ(FirstInvalidUtf8("\xed\xa0\x80"), 0u);        // Surrogate.
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);    // Above U+10FFFF.
  EXPECT_EQ(FirstInvalidUtf8("abc\xe2\x82"), 3u);         // Truncated.
}

TEST(RequestParsingTest, NonUtf8StringsAreInvalidArgumentNamingTheField) {
  v1::SubmitJobRequest request;
  request.mutable_spec()->set_model_dir("/m");
  request.mutable_spec()->set_calib_jsonl(std::string("/c\xff.jsonl"));
  (*request.mutable_spec()->mutable_labels())["team"] = "x";
  std::string bytes;
  ASSERT_TRUE(request.SerializeToString(&bytes));
  v1::SubmitJobRequest parsed;
  absl::Status status = ParseRequest(bytes, &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("spec.calib_jsonl: not valid UTF-8 (byte 0xff at offset 2"),
            std::string::npos)
      << status;
  request.mutable_spec()->set_calib_jsonl("/c.jsonl");
  (*request.mutable_spec()->mutable_labels())["team"] = std::string("\xc3");
  ASSERT_TRUE(request.SerializeToString(&bytes));
  status = ParseRequest(bytes, &parsed);
  EXPECT_NE(status.message().find("spec.labels.value"), std::string::npos) << status;
  (*request.mutable_spec()->mutable_labels())["team"] = "ok";
  ASSERT_TRUE(request.SerializeToString(&bytes));
  ASSERT_TRUE(ParseRequest(bytes, &parsed).ok());
  EXPECT_EQ(parsed.spec().labels().at("team"), "ok");
  EXPECT_EQ(ParseRequest("\xff\xff\xff", &parsed).code(), absl::StatusCode::kInvalidArgument);
}

TEST(PathCheckTest, BadPathsAreRefusedWithoutThrowing) {
  const fs::path root = fs::temp_directory_path() / ("quantd-paths-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "model");
  std::ofstream(root / "calib.jsonl") << "{}";
  const std::vector<std::string> roots = {root.string()};
  struct Case {
    std::string value;
    PathKind kind;
    std::string expected;
  } cases[] = {
      {"", PathKind::kExistingFile, "required"},
      {"relative", PathKind::kExistingFile, "is not absolute"},
      {root.string() + "/" + std::string(256, 'n'), PathKind::kExistingFile, "component of 256"},
      {"/" + std::string(5000, 'p'), PathKind::kExistingFile, "longer than the 4095"},
      {root.string() + "/../etc/passwd", PathKind::kExistingFile, "\"..\""},
      {"/etc/passwd", PathKind::kExistingFile, "outside the allowed roots"},
      {root.string() + "/missing.jsonl", PathKind::kExistingFile, "does not exist"},
      {root.string() + "/model", PathKind::kExistingFile, "is not a file"},
      {root.string() + "/calib.jsonl", PathKind::kOutputDirectory, "is not a directory"},
      {std::string("/a\0b", 4), PathKind::kExistingFile, "NUL"},
  };
  for (const Case& c : cases) {
    auto checked = CheckPathField(roots, "calib_jsonl", c.value, c.kind);
    ASSERT_FALSE(checked.ok()) << c.expected;
    EXPECT_NE(checked.status().message().find(c.expected), std::string::npos) << checked.status();
    EXPECT_NE(checked.status().message().find("spec.calib_jsonl"), std::string::npos);
    EXPECT_LT(checked.status().message().size(), 700u);
  }
  EXPECT_EQ(*CheckPathField(roots, "m", root.string() + "//model/.", PathKind::kExistingDirectory),
            root.string() + "/model");
  EXPECT_TRUE(CheckPathField(roots, "o", root.string() + "/new/out", PathKind::kOutputDirectory)
                  .ok());
  auto none = CheckPathField({"/nonexistent-root"}, "m", "/nonexistent-root/x",
                             PathKind::kExistingDirectory);
  EXPECT_NE(none.status().message().find("none of the allowed roots"), std::string::npos);
  fs::remove_all(root);
}

TEST(ListenSecurityTest, LoopbackIsAllowedOtherAddressesNeedTlsAndIdentities) {
  for (const char* address : {"127.0.0.1:7450", "127.1.2.3:0", "localhost:7450", "[::1]:7450",
                              "unix:/run/quantd.sock"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address :
       {"0.0.0.0:7450", ":7450", "[::]:7450", "10.0.0.5:7450", "quantd.example:7450"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
  ServerConfig config;
  config.listen = "0.0.0.0:7450";
  auto refused = CheckListenSecurity(config);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("TLS (--tls-cert, --tls-key) and no authentication"),
            std::string::npos)
      << refused.status();
  config.insecure = true;
  EXPECT_NE(CheckListenSecurity(config)->find("not a loopback address"), std::string::npos);
  config.insecure = false;
  config.tls_cert = "c.pem";
  config.tls_key = "k.pem";
  config.identities = "ids.json";
  EXPECT_EQ(*CheckListenSecurity(config), "");
  config.metrics_require_token = true;
  config.identities.clear();
  config.listen = "127.0.0.1:0";
  EXPECT_FALSE(CheckListenSecurity(config).ok());
}

}  // namespace
}  // namespace quantd::server
