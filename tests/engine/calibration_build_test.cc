// Calibration: CPython-identical sampling, row filtering with counts, chat wrapping with the
// template or the ChatML fallback, AutoAWQ's strip / skip / concatenate / cut, clear errors, and
// the --dump_calib file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "calib/calibration.h"
#include "calib/python_random.h"
#include "calib/python_strip.h"
#include "testing/io_temp_dir.h"
#include "tests/testing/test_data.h"

namespace quantd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IoTempDir;
using testing::ListFileNames;
using testing::ReadTextFile;
using testing::WriteTextFile;

// Encodes each byte as one id (byte + 3); BOS (id 1) first when configured. Records its inputs.
class FakeTokenizer : public tokenizer::Tokenizer {
 public:
  explicit FakeTokenizer(bool bos = false) : bos_(bos) {}
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const override {
    encoded.emplace_back(text);
    std::vector<int32_t> ids;
    if (bos_ && add_special_tokens) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t>, bool) const override {
    return std::string();
  }
  std::optional<std::string> bos_token() const override {
    return bos_ ? std::optional<std::string>("<s>") : std::nullopt;
  }
  std::optional<std::string> eos_token() const override { return "</s>"; }
  std::optional<int32_t> TokenToId(std::string_view) const override { return std::nullopt; }
  int32_t vocab_size() const override { return 259; }

  mutable std::vector<std::string> encoded;

 private:
  bool bos_;
};

class Logs : public EngineObserver {
 public:
  void OnLog(LogLevel level, const std::string& message) override {
    (level == LogLevel::kWarning ? warnings : infos).push_back(message);
  }
  std::vector<std::string> warnings, infos;
};

CalibrationOptions Options(const std::string& path, int num_calib, int max_seq_len) {
  CalibrationOptions o;
  o.calib_jsonl = path;
  o.num_calib = num_calib;
  o.max_seq_len = max_seq_len;
  o.apply_chat_template = false;
  return o;
}

// One pre-tokenized row of n ids, enough to fill a block whatever the text rows give.
std::string FillerRow(int n) {
  std::string s = "{\"input_ids\": [0";
  for (int i = 1; i < n; ++i) s += ", 0";
  return s + "]}\n";
}

std::string IdRows(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "{\"input_ids\": [" + std::to_string(i) + "]}\n";
  return s;
}

TEST(PythonRandomTest, MatchesCPython) {
  // python3 -c "import random; r=random.Random(42); print([r.getrandbits(32) for _ in range(3)])"
  PythonRandom r(42);
  EXPECT_EQ(r.GetRandBits(32), 2746317213u);
  EXPECT_EQ(r.GetRandBits(32), 478163327u);
  EXPECT_EQ(r.GetRandBits(32), 107420369u);
  // r=random.Random(42); [r.randint(0,i) for i in (0,1,5,100,8191,10**6,2**40)]
  PythonRandom s(42);
  std::vector<int64_t> got;
  for (int64_t hi : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{100}, int64_t{8191},
                     int64_t{1000000}, int64_t{1} << 40}) {
    got.push_back(s.RandInt(0, hi));
  }
  EXPECT_THAT(got, ElementsAre(0, 0, 5, 35, 4012, 234053, 191320892468));
  PythonRandom big((uint64_t{1} << 40) + 7);  // Two-word key.
  EXPECT_EQ(big.GetRandBits(32), 2635837658u);
  EXPECT_EQ(big.GetRandBits(32), 3209733218u);
  PythonRandom zero(0);
  EXPECT_EQ(zero.GetRandBits(32), 3626764237u);
}

TEST(PythonStripTest, StripsWhatPythonStrips) {
  EXPECT_EQ(PythonStrip("  a b \n\t"), "a b");
  EXPECT_EQ(PythonStrip("\u3000\u00a0x\u2029\u0085"), "x");
  EXPECT_EQ(PythonStrip("\u200bx\u200b"), "\u200bx\u200b");  // Zero-width space is not space.
  EXPECT_EQ(PythonStrip(" \n "), "");
  EXPECT_EQ(PythonStrip("\xff "), "\xff");  // Invalid UTF-8 kept.
  EXPECT_EQ(PythonStrip("你好\n"), "你好");
}

TEST(CalibrationBuildTest, ReservoirSampleEqualsTheSeedScripts) {
  IoTempDir dir;
  WriteTextFile(dir.Sub("c.jsonl"), IdRows(20));
  // Python: Algorithm R over range(20), k=5, random.Random(42) -> [18, 17, 19, 10, 8].
  auto set = BuildCalibration(Options(dir.Sub("c.jsonl"), 5, 1), nullptr, nullptr, nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(set->ids, ElementsAre(18, 17, 19, 10, 8));
  WriteTextFile(dir.Sub("d.jsonl"), IdRows(1000));
  CalibrationOptions o = Options(dir.Sub("d.jsonl"), 7, 1);
  o.seed = 123;  // -> [620, 120, 726, 553, 624, 828, 356]
  set = BuildCalibration(o, nullptr, nullptr, nullptr);
  ASSERT_TRUE(set.ok());
  EXPECT_THAT(set->ids, ElementsAre(620, 120, 726, 553, 624, 828, 356));
  // No more valid rows than num_calib: all of them, in file order.
  set = BuildCalibration(Options(dir.Sub("c.jsonl"), 20, 1), nullptr, nullptr, nullptr);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->ids.size(), 20u);
  EXPECT_EQ(set->ids[19], 19);
}

TEST(CalibrationBuildTest, SkippedRowsAreCounted) {
  IoTempDir dir;
  WriteTextFile(dir.Sub("c.jsonl"),
                "\n   \n{bad json\n[1,2]\n\"str\"\n{\"other\": 1}\n{\"text\": \"  \"}\n"
                "{\"text\": 5}\n{\"input_ids\": [1, -1]}\n{\"input_ids\": [999]}\n"
                "{\"input_ids\": \"x\"}\n{\"text\": \"abcd\"}\n{\"input_ids\": [7, 8]}\n");
  CalibrationOptions o = Options(dir.Sub("c.jsonl"), 10, 2);
  o.vocab_size = 100;
  FakeTokenizer tok;
  auto set = BuildCalibration(o, &tok, nullptr, nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  const CalibrationCounts& c = set->counts;
  EXPECT_EQ(c.lines, 13);
  EXPECT_EQ(c.skipped_blank, 2);
  EXPECT_EQ(c.skipped_unparsable, 1);
  EXPECT_EQ(c.skipped_not_object, 2);
  EXPECT_EQ(c.skipped_no_text, 3);
  EXPECT_EQ(c.skipped_bad_input_ids, 3);
  EXPECT_EQ(c.valid_rows, 2);
  EXPECT_EQ(c.texts_over_length, 1);  // "abcd": 4 tokens > 2.
  EXPECT_EQ(c.texts_used, 1);
  EXPECT_THAT(set->ids, ElementsAre(7, 8));
}

TEST(CalibrationBuildTest, StripEncodeSkipConcatenateCut) {
  IoTempDir dir;
  WriteTextFile(dir.Sub("c.jsonl"),
                "{\"text\": \"  ab \\n\"}\n{\"text\": \"abcdefg\"}\n{\"text\": \"cde\"}\n"
                "{\"text\": \"f\"}\n");
  FakeTokenizer tok(/*bos=*/true);
  auto set = BuildCalibration(Options(dir.Sub("c.jsonl"), 100, 4), &tok, nullptr, nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(tok.encoded, ElementsAre("ab", "abcdefg", "cde", "f"));
  // [1 a b] [abcdefg skipped: 8 > 4] [1 c d e] [1 f] = 9 tokens -> 2 blocks of 4, 1 dropped.
  EXPECT_EQ(set->num_blocks(), 2);
  EXPECT_THAT(set->block(0), ElementsAre(1, 'a' + 3, 'b' + 3, 1));
  EXPECT_THAT(set->block(1), ElementsAre('c' + 3, 'd' + 3, 'e' + 3, 1));
  EXPECT_EQ(set->counts.tokens, 9);
  EXPECT_EQ(set->counts.tokens_dropped, 1);
  EXPECT_EQ(set->counts.texts_over_length, 1);
}

TEST(CalibrationBuildTest, ChatFallbackWhenTheModelHasNoTemplate) {
  IoTempDir dir;
  WriteTextFile(dir.Sub("c.jsonl"), "{\"text\": \" hi \"}\n" + FillerRow(100));
  CalibrationOptions o = Options(dir.Sub("c.jsonl"), 10, 100);
  o.apply_chat_template = true;
  o.system_prompt = "SYS";
  FakeTokenizer tok;
  Logs logs;
  CalibrationChat none;
  none.unavailable_reason = "the model has no chat template";
  ASSERT_TRUE(BuildCalibration(o, &tok, &none, &logs).ok());
  EXPECT_THAT(tok.encoded, ElementsAre("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nhi"
                                       "<|im_end|>\n<|im_start|>assistant"));
  ASSERT_EQ(logs.warnings.size(), 1u);
  EXPECT_THAT(logs.warnings[0], HasSubstr("the model has no chat template"));
  o.system_prompt = "";
  tok.encoded.clear();
  ASSERT_TRUE(BuildCalibration(o, &tok, &none, nullptr).ok());
  EXPECT_THAT(tok.encoded, ElementsAre("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant"));
}

TEST(CalibrationBuildTest, ABrokenTemplateFailsUnlessTheChatMlFallbackIsAskedFor) {
  IoTempDir dir;
  WriteTextFile(dir.Sub("c.jsonl"), "{\"text\": \"hi\"}\n" + FillerRow(100));
  CalibrationOptions o = Options(dir.Sub("c.jsonl"), 10, 100);
  o.apply_chat_template = true;
  FakeTokenizer tok;
  CalibrationChat broken;
  broken.unavailable_reason = "the chat template cannot be parsed: m: line 1: unclosed tag";
  broken.broken = true;
  auto refused = BuildCalibration(o, &tok, &broken, nullptr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("unclosed tag"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("chat_template_fallback"));
  EXPECT_TRUE(tok.encoded.empty());
  o.chat_template_fallback = true;
  Logs logs;
  ASSERT_TRUE(BuildCalibration(o, &tok, &broken, &logs).ok());
  ASSERT_EQ(logs.warnings.size(), 1u);
  EXPECT_THAT(logs.warnings[0], HasSubstr("ChatML fallback"));
  o.chat_template_fallback = false;
  o.apply_chat_template = false;  // Not wrapping at all: the template does not matter.
  EXPECT_TRUE(BuildCalibration(o, &tok, &broken, nullptr).ok());
}

TEST(CalibrationBuildTest, ChatTemplateRenderedThenStripped) {
  IoTempDir dir;
  WriteTextFile(dir.Sub("c.jsonl"), "{\"text\": \"hi\"}\n{\"text\": \"boom\"}\n" + FillerRow(100));
  CalibrationOptions o = Options(dir.Sub("c.jsonl"), 10, 100);
  o.apply_chat_template = true;
  o.system_prompt = "S";
  auto tmpl = chat_template::ChatTemplate::Parse(
      "{{ bos_token }}{% for m in messages %}{% if m.content == 'boom' %}"
      "{{ raise_exception('no boom') }}{% endif %}[{{ m.role }}]{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}[a]\n{% endif %}",
      "test");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  CalibrationChat chat;
  chat.tmpl.emplace(std::move(*tmpl));
  FakeTokenizer tok(/*bos=*/true);
  Logs logs;
  ASSERT_TRUE(BuildCalibration(o, &tok, &chat, &logs).ok());
  ASSERT_EQ(tok.encoded.size(), 2u);
  EXPECT_EQ(tok.encoded[0], "<s>[system]S[user]hi[a]");
  EXPECT_EQ(tok.encoded[1],
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nboom<|im_end|>\n"
            "<|im_start|>assistant");
  ASSERT_EQ(logs.warnings.size(), 1u);
  EXPECT_THAT(logs.warnings[0], HasSubstr("1 of 3 sampled rows use the ChatML fallback"));
  EXPECT_THAT(logs.warnings[0], HasSubstr("no boom"));
}

TEST(CalibrationBuildTest, ClearErrors) {
  IoTempDir dir;
  FakeTokenizer tok;
  auto missing = BuildCalibration(Options(dir.Sub("none.jsonl"), 4, 4), &tok, nullptr, nullptr);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("none.jsonl"));
  // What the file must hold and how to make one (nothing that is not shipped).
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(kCalibJsonlFormatHint));

  WriteTextFile(dir.Sub("bad.jsonl"), "\n[1]\n{\"x\": 1}\n");
  auto empty = BuildCalibration(Options(dir.Sub("bad.jsonl"), 4, 4), &tok, nullptr, nullptr);
  EXPECT_THAT(std::string(empty.status().message()),
              HasSubstr("holds no usable row (3 lines: 1 blank, 0 unparsable, 1 not an object, "
                        "1 without text"));

  WriteTextFile(dir.Sub("short.jsonl"), "{\"text\": \"abc\"}\n{\"text\": \"toolongtext\"}\n");
  auto small = BuildCalibration(Options(dir.Sub("short.jsonl"), 4, 8), &tok, nullptr, nullptr);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small.status().message()),
              HasSubstr("1 usable texts give 3 tokens, fewer than one block of max_seq_len 8"));
  EXPECT_THAT(std::string(small.status().message()), HasSubstr("1 longer than max_seq_len"));
  EXPECT_THAT(std::string(small.status().message()), HasSubstr("lower --max_seq_len"));

  auto no_tok = BuildCalibration(Options(dir.Sub("short.jsonl"), 4, 1), nullptr, nullptr, nullptr);
  EXPECT_EQ(no_tok.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(
      BuildCalibration(Options(dir.Sub("short.jsonl"), 0, 1), &tok, nullptr, nullptr).ok());
  EXPECT_FALSE(
      BuildCalibration(Options(dir.Sub("short.jsonl"), 4, 0), &tok, nullptr, nullptr).ok());
}

TEST(CalibrationBuildTest, ParityFixtureIsSixteenBlocks) {
  const std::string path = quantd::test_data::Path("fixtures/autoawq-parity/llama-mha/calib.jsonl");
  CalibrationOptions o = Options(path, 16, 128);
  o.vocab_size = 512;
  auto set = BuildCalibration(o, nullptr, nullptr, nullptr);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->num_blocks(), 16);
  EXPECT_EQ(set->block(0)[0], 409);
  EXPECT_EQ(set->counts.tokens_dropped, 0);
}

TEST(CalibrationBuildTest, DumpIsJsonWrittenAtomically) {
  IoTempDir dir;
  CalibrationSet set;
  set.seq_len = 2;
  set.ids = {5, 6, 7, 8};
  ASSERT_TRUE(WriteCalibrationDump(dir.Sub("dump.json"), set).ok());
  EXPECT_EQ(ReadTextFile(dir.Sub("dump.json")), "{\"seq_len\": 2, \"blocks\": [[5, 6], [7, 8]]}\n");
  EXPECT_THAT(ListFileNames(dir.path()), ElementsAre("dump.json"));
  EXPECT_FALSE(WriteCalibrationDump(dir.Sub("no/such/dir/dump.json"), set).ok());
}

}  // namespace
}  // namespace quantd::engine
