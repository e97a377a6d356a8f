// safetensors reading: header validation with clear errors, exact float conversion, and the
// writer's layout (round trip, ordering, padding) as the safetensors library produces it.
#include "io/safetensors_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "io/safetensors_writer.h"
#include "testing/io_temp_dir.h"

namespace quantd::engine {
namespace {

using ::testing::HasSubstr;
using testing::IoTempDir;
using testing::WriteTextFile;

std::string Raw(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string OpenError(const IoTempDir& dir, const std::string& content) {
  std::string path = dir.Sub("x.safetensors");
  WriteTextFile(path, content);
  auto file = SafetensorsFile::Open(path);
  if (file.ok()) return "";
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path));
  return std::string(file.status().message());
}

TEST(SafetensorsFileTest, ReadsF16Bf16F32Exactly) {
  IoTempDir dir;
  // 1.0 and -2.0 in each type.
  std::string f16("\x00\x3c\x00\xc0", 4), bf16("\x80\x3f\x00\xc0", 4);
  float f32[2] = {1.0f, -2.0f};
  std::string data = f16 + bf16 + std::string(reinterpret_cast<char*>(f32), 8);
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]},)"
      R"("c":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  WriteTextFile(dir.Sub("m.safetensors"), Raw(header, data));
  auto file = SafetensorsFile::Open(dir.Sub("m.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  for (const char* name : {"a", "b", "c"}) {
    const SafetensorsEntry* e = (*file)->Find(name);
    ASSERT_NE(e, nullptr);
    auto t = (*file)->ReadFloat(*e);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->data, (std::vector<float>{1.0f, -2.0f})) << name;
  }
  EXPECT_EQ((*file)->Find("b")->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ((*file)->Find("zz"), nullptr);
}

TEST(SafetensorsFileTest, ATensorLargerThanAReadSliceIsReadExactly) {
  // 9 M bfloat16 values (18 MB): ReadFloat converts 16 MiB slices and drops each one's pages; an
  // odd element count leaves a short last slice and slice ends inside pages. Every value must be
  // the exact float32 of its bits, and the file reads the same again (dropped pages fault back).
  IoTempDir dir;
  const int64_t n = 9'000'001;
  std::string data(static_cast<size_t>(2 * n), '\0');
  std::vector<float> want(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const auto bits = static_cast<uint16_t>((i * 2654435761u) >> 7) & 0x7f7f;  // finite values
    data[static_cast<size_t>(2 * i)] = static_cast<char>(bits & 0xff);
    data[static_cast<size_t>(2 * i + 1)] = static_cast<char>(bits >> 8);
    const uint32_t f = static_cast<uint32_t>(bits) << 16;
    std::memcpy(&want[static_cast<size_t>(i)], &f, 4);
  }
  const std::string header =
      absl::StrCat(R"({"w":{"dtype":"BF16","shape":[)", n, R"(],"data_offsets":[0,)", 2 * n, "]}}");
  WriteTextFile(dir.Sub("big.safetensors"), Raw(header, data));
  auto file = SafetensorsFile::Open(dir.Sub("big.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  for (int pass = 0; pass < 2; ++pass) {
    auto t = (*file)->ReadFloat(*(*file)->Find("w"));
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE(t->data == want) << "pass " << pass;
  }
}

TEST(SafetensorsFileTest, HeaderProblemsAreClearErrors) {
  IoTempDir dir;
  const std::string four(4, '\0');
  EXPECT_THAT(OpenError(dir, "abc"), HasSubstr("fewer than the 8-byte length"));
  EXPECT_THAT(OpenError(dir, Raw("{}", "").substr(0, 8) + "{"), HasSubstr("exceeds the file"));
  EXPECT_THAT(OpenError(dir, Raw("[1,2]", "")), HasSubstr("not a JSON object"));
  EXPECT_THAT(OpenError(dir, Raw("{not json", "")), HasSubstr("not a JSON object"));
  EXPECT_THAT(OpenError(dir, Raw(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                                 std::string(8, '\0'))),
              HasSubstr("dtype F64 is not supported"));
  EXPECT_THAT(
      OpenError(dir, Raw(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}})", four)),
      HasSubstr("needs 6 bytes but data_offsets span 4"));
  EXPECT_THAT(
      OpenError(dir, Raw(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", four)),
      HasSubstr("outside the data section"));
  EXPECT_THAT(OpenError(dir, Raw(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"F16","shape":[2],"data_offsets":[2,6]}})",
                                 std::string(6, '\0'))),
              HasSubstr("overlap"));
  EXPECT_THAT(
      OpenError(dir, Raw(R"({"a":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", four)),
      HasSubstr("shape"));
  EXPECT_THAT(OpenError(dir, Raw(R"({"a":{"dtype":"F16","shape":[2]}})", four)),
              HasSubstr("data_offsets"));
  EXPECT_THAT(OpenError(dir, Raw(R"({"__metadata__":{"format":1}})", "")),
              HasSubstr("__metadata__"));
  EXPECT_THAT(OpenError(dir, Raw(R"({"a":{"dtype":"F16","shape":[4611686018427387904,4],)"
                                 R"("data_offsets":[0,4]}})",
                                 four)),
              HasSubstr("needs more than"));
  auto missing = SafetensorsFile::Open(dir.Sub("missing.safetensors"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("missing.safetensors"));
}

TEST(SafetensorsFileTest, NonFiniteWeightsAreRefusedNamingTheTensor) {
  IoTempDir dir;
  const std::string header =
      R"({"model.layers.0.mlp.up_proj.weight":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
  for (const auto& [bits, word] : {std::pair{std::string("\x00\x3c\x00\x7e", 4), "NaN"},
                                   std::pair{std::string("\x00\x7c\x00\x3c", 4), "+inf"},
                                   std::pair{std::string("\x00\x3c\x00\xfc", 4), "-inf"}}) {
    WriteTextFile(dir.Sub("w.safetensors"), Raw(header, bits));
    auto file = SafetensorsFile::Open(dir.Sub("w.safetensors"));
    ASSERT_TRUE(file.ok()) << file.status();
    auto tensor = (*file)->ReadFloat((*file)->entries()[0]);
    EXPECT_EQ(tensor.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(tensor.status().message()),
                HasSubstr(std::string("\"model.layers.0.mlp.up_proj.weight\" holds ") + word));
  }
}

TEST(SafetensorsWriterTest, LayoutMatchesTheSafetensorsLibrary) {
  SafetensorsLayout layout = PlanSafetensorsLayout({{"z.scales", DType::kF16, {2, 8}},
                                                    {"z.qweight", DType::kI32, {2, 1}},
                                                    {"a.norm", DType::kBF16, {3}},
                                                    {"b.f32", DType::kF32, {1}},
                                                    {"a.qweight", DType::kI32, {1, 1}}},
                                                   {{"format", "pt"}});
  std::vector<std::string> order;
  for (const auto& t : layout.ordered) order.push_back(t.name);
  EXPECT_EQ(order,
            (std::vector<std::string>{"b.f32", "a.qweight", "z.qweight", "a.norm", "z.scales"}));
  EXPECT_EQ(layout.header.size() % 8, 0u);
  EXPECT_EQ(layout.header.rfind("{\"__metadata__\":{\"format\":\"pt\"},\"b.f32\":", 0), 0u);
  EXPECT_EQ(layout.offsets, (std::vector<uint64_t>{0, 4, 8, 16, 22}));
  EXPECT_EQ(layout.data_size, 54u);
}

TEST(SafetensorsWriterTest, WritesInAnyOrderAndRoundTrips) {
  IoTempDir dir;
  std::string path = dir.Sub("w.safetensors");
  auto writer = SafetensorsWriter::Create(path, {{"x", DType::kI32, {2}}, {"y", DType::kF16, {1}}},
                                          {{"format", "pt"}});
  ASSERT_TRUE(writer.ok()) << writer.status();
  uint8_t y[2] = {0x00, 0x3c};
  int32_t x[2] = {7, -1};
  ASSERT_TRUE((*writer)->Write("y", y).ok());
  EXPECT_FALSE((*writer)->Finish().ok());  // x missing
  EXPECT_EQ((*writer)->Missing(), std::vector<std::string>{"x"});
  EXPECT_FALSE((*writer)->Write("x", absl::Span<const uint8_t>(y, 2)).ok());  // wrong size
  EXPECT_FALSE((*writer)->Write("nope", y).ok());
  ASSERT_TRUE(
      (*writer)->Write("x", absl::Span<const uint8_t>(reinterpret_cast<uint8_t*>(x), 8)).ok());
  EXPECT_FALSE((*writer)->Write("y", y).ok());  // twice
  ASSERT_TRUE((*writer)->Finish().ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(*(*file)->ReadInt32(*(*file)->Find("x")), (std::vector<int32_t>{7, -1}));
  EXPECT_EQ((*file)->ReadFloat(*(*file)->Find("y"))->data, std::vector<float>{1.0f});
  EXPECT_FALSE((*file)->ReadFloat(*(*file)->Find("x")).ok());
}

TEST(SafetensorsWriterTest, TensorsWrittenInParts) {
  IoTempDir dir;
  std::string path = dir.Sub("p.safetensors");
  auto writer = SafetensorsWriter::Create(path, {{"x", DType::kF16, {4}}}, {});
  ASSERT_TRUE(writer.ok());
  const uint8_t a[4] = {0x00, 0x3c, 0x00, 0x40}, b[4] = {0x00, 0x42, 0x00, 0x44};  // 1 2 3 4
  ASSERT_TRUE((*writer)->WritePart("x", 4, b).ok());
  EXPECT_EQ((*writer)->Missing(), std::vector<std::string>{"x"});
  EXPECT_FALSE((*writer)->WritePart("x", 6, b).ok());  // Past the end.
  ASSERT_TRUE((*writer)->WritePart("x", 0, a).ok());
  EXPECT_TRUE((*writer)->Missing().empty());
  EXPECT_FALSE((*writer)->WritePart("x", 0, a).ok());  // Already complete.
  ASSERT_TRUE((*writer)->Finish().ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->ReadFloat(*(*file)->Find("x"))->data, (std::vector<float>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace quantd::engine
