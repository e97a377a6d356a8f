// The resume journal's file format and the run fingerprint's account of a difference.
#include "pipeline/resume_journal.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace quantd::engine {
namespace {

namespace fs = std::filesystem;

std::string Dir(const std::string& name) {
  const std::string dir = std::string(QUANTD_BINARY_DIR) + "/resume_journal/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

RunFingerprint Fingerprint(const std::string& group_size) {
  return {{{"engine", "0.1.0 abc"}, {"option group_size", group_size}, {"calibration", "4x512 x"}}};
}

JournalLayer Layer(int i) {
  JournalLayer l;
  l.layer = i;
  l.source_digest = "s" + std::to_string(i);
  l.output_digest = "o" + std::to_string(i);
  l.report = {{"layer", i}, {"ratio", 0.35}};
  l.norms["input_layernorm"] = {1.0f, -2.5f, 3.0e-8f};
  return l;
}

TEST(ResumeJournalTest, RecordsRoundTripAndATornTailIsIgnored) {
  const std::string dir = Dir("roundtrip");
  EXPECT_TRUE(absl::IsNotFound(ResumeJournal::Read(dir).status()));
  {
    auto journal = ResumeJournal::Create(dir, Fingerprint("128"), 4);
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_TRUE((*journal)->Add(Layer(0)).ok());
    ASSERT_TRUE((*journal)->Add(Layer(1)).ok());
  }
  std::ofstream(ResumeJournal::PathFor(dir), std::ios::app) << "{\"layer\": 2, \"sou";  // torn
  absl::StatusOr<JournalContents> c = ResumeJournal::Read(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->layers_total, 4);
  ASSERT_EQ(c->layers.size(), 2u);
  EXPECT_EQ(c->layers[1].output_digest, "o1");
  EXPECT_EQ(c->layers[1].report, Layer(1).report);
  EXPECT_EQ(c->layers[0].norms.at("input_layernorm"), Layer(0).norms.at("input_layernorm"));
  EXPECT_EQ(c->fingerprint.DifferenceFrom(Fingerprint("128")), "");

  // Continuing keeps the verified records and cuts the rest.
  {
    auto journal = ResumeJournal::Continue(dir, 1);
    ASSERT_TRUE(journal.ok()) << journal.status();
    JournalLayer again = Layer(1);
    again.output_digest = "o1'";
    ASSERT_TRUE((*journal)->Add(again).ok());
  }
  c = ResumeJournal::Read(dir);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->layers.size(), 2u);
  EXPECT_EQ(c->layers[1].output_digest, "o1'");
  ResumeJournal::Remove(dir);
  EXPECT_FALSE(fs::exists(ResumeJournal::PathFor(dir)));
}

TEST(ResumeJournalTest, NotAJournalIsAClearError) {
  const std::string dir = Dir("garbage");
  std::ofstream(ResumeJournal::PathFor(dir)) << "hello\n";
  absl::StatusOr<JournalContents> c = ResumeJournal::Read(dir);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("not a resume journal"), std::string::npos);
}

TEST(RunFingerprintTest, SaysWhatDiffers) {
  EXPECT_EQ(Fingerprint("128").DifferenceFrom(Fingerprint("64")),
            "the option group_size differs (was 128, now 64)");
  RunFingerprint other = Fingerprint("128");
  other.parts[2].second = "5x512 y";
  EXPECT_NE(Fingerprint("128").DifferenceFrom(other).find("the calibration token blocks differ"),
            std::string::npos);
  other = Fingerprint("128");
  other.parts.push_back({"model model-00003-of-00003.safetensors", "12 h"});
  EXPECT_NE(Fingerprint("128").DifferenceFrom(other).find("model-00003-of-00003"),
            std::string::npos);
}

}  // namespace
}  // namespace quantd::engine
