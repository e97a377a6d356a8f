// PythonRandom: CPython's random.Random reproduced exactly — MT19937 seeded by init_by_array from
// an integer seed, getrandbits, and randint via rejection sampling (_randbelow_with_getrandbits,
// CPython 3.x). With it our calibration sample equals the seed script's, which samples with
// random.Random(42).
#ifndef QUANTD_ENGINE_CALIB_PYTHON_RANDOM_H_
#define QUANTD_ENGINE_CALIB_PYTHON_RANDOM_H_

#include <array>
#include <cstdint>

namespace quantd::engine {

class PythonRandom {
 public:
  // random.Random(seed) for a non-negative integer seed.
  explicit PythonRandom(uint64_t seed);

  // random.getrandbits(k), 0 <= k <= 64.
  uint64_t GetRandBits(int k);

  // random.randint(a, b), a <= b, b - a < 2^63.
  int64_t RandInt(int64_t a, int64_t b);

 private:
  uint32_t Next32();
  void InitGenrand(uint32_t s);

  static constexpr int kN = 624;
  std::array<uint32_t, kN> mt_{};
  int index_ = kN + 1;
};

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CALIB_PYTHON_RANDOM_H_
