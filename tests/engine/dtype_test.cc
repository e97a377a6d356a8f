// 16-bit float conversions match IEEE round-to-nearest-even (PyTorch's casts) exactly.
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace quantd::engine {
namespace {

TEST(DTypeTest, Float16RoundsHalfToEvenAndSaturatesToInfinity) {
  EXPECT_EQ(FloatToF16(1.0f), 0x3c00);
  EXPECT_EQ(FloatToF16(65504.0f), 0x7bff);   // Largest finite half.
  EXPECT_EQ(FloatToF16(65519.0f), 0x7bff);   // Below the midpoint to 65536: rounds down.
  EXPECT_EQ(FloatToF16(65520.0f), 0x7c00);   // Midpoint rounds to even = infinity.
  EXPECT_EQ(FloatToF16(-1e9f), 0xfc00);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(FloatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(FloatToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Subnormals: 2^-24 is the smallest, half of it ties to zero (even).
  EXPECT_EQ(FloatToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(FloatToF16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(FloatToF16(3 * std::ldexp(1.0f, -25)), 0x0002);
  // AutoAWQ's degenerate-group scale: fp16(1e-5 / 15) is a subnormal.
  EXPECT_NEAR(F16ToFloat(FloatToF16(1e-5f / 15.0f)), 6.56e-7, 1e-9);
  EXPECT_TRUE(std::isnan(F16ToFloat(FloatToF16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DTypeTest, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t bits = static_cast<uint16_t>(h);
    float f = F16ToFloat(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToF16(f), bits) << h;
  }
}

TEST(DTypeTest, BFloat16RoundsHalfToEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x3f808000u)), 0x3f80);  // Tie: to even.
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x3f818000u)), 0x3f82);  // Tie: to even (up).
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x3f808001u)), 0x3f81);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = Bf16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBf16(f), h);
  }
}

}  // namespace
}  // namespace quantd::engine
