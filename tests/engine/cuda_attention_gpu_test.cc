// The CUDA backend's fused causal attention (cuda/kernels.h CausalAttention) against a float64
// host reference, on random q/k/v representable in the model dtype: fp16 and bf16 (tensor-core
// kernel) and float32 (exact kernel), head_dim 64, 96, 128 and 256, GQA, block lengths 1 to 2048,
// and Gemma's options (1/√query_pre_attn_scalar, soft-capped scores, sliding windows). Also
// times the tensor-core kernel against the float32 kernel at the benchmark's geometry. Built only
// with the CUDA backend; skips itself where no GPU is present.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/dtype.h"
#include "cuda/attention_tiles.h"
#include "cuda/kernels.h"
#include "gtest/gtest.h"
#include "testing/cuda_gpu_test_support.h"

namespace quantd::engine {
namespace {

struct Shape {
  int blocks, len, heads, kv_heads, d;
  float softcap = 0.0f;  // scores = c · tanh(scores / c)
  int window = 0;        // keys t − window < j ≤ t
  double scalar = 0.0;   // scores · 1/√scalar; 0: head_dim
  int64_t tokens() const { return int64_t{blocks} * len; }
  int64_t q_cols() const { return int64_t{heads} * d; }
  int64_t kv_cols() const { return int64_t{kv_heads} * d; }
};

// Random q/k/v in md, unit variance (normal, or uniform from a cheap generator for the large
// timing inputs): q scaled by `q_scale` (the spread of the scores) and later keys made longer (the
// running maximum keeps rising along a row, exercising the online rescaling).
struct Inputs {
  std::vector<float> q, k, v;
};
Inputs RandomInputs(const Shape& s, DType md, float q_scale, uint32_t seed, bool uniform = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  uint64_t state = seed;
  auto next = [&] {
    if (!uniform) return normal(rng);
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (static_cast<float>(state >> 40) * 0x1p-24f - 0.5f) * 3.4641016f;
  };
  Inputs in;
  in.q.resize(static_cast<size_t>(s.tokens() * s.q_cols()));
  in.k.resize(static_cast<size_t>(s.tokens() * s.kv_cols()));
  in.v.resize(in.k.size());
  for (float& x : in.q) x = RoundTo(md, q_scale * next());
  for (int64_t t = 0; t < s.tokens(); ++t) {
    const float grow = 1.0f + static_cast<float>(t % s.len) / static_cast<float>(s.len);
    for (int64_t c = 0; c < s.kv_cols(); ++c) {
      in.k[t * s.kv_cols() + c] = RoundTo(md, grow * next());
      in.v[t * s.kv_cols() + c] = RoundTo(md, next());
    }
  }
  return in;
}

// Unit roundoff of md (half its ulp at 1).
double UnitRoundoff(DType md) {
  switch (md) {
    case DType::kF16:
      return std::ldexp(1.0, -11);
    case DType::kBF16:
      return std::ldexp(1.0, -8);
    default:
      return std::ldexp(1.0, -24);
  }
}

struct ErrorStats {
  int64_t checked = 0;
  int64_t failed = 0;
  double worst = 0.0;     // max |got − ref| / tolerance
  double max_ulps = 0.0;  // max |got − ref| in md ulps at A
  std::string first_failure;
};

// The float64 reference of one output row (query t of head h in block b) and its tolerance.
// 16-bit md: rounding P and the output to md moves the result by at most u·(A + |ref|) (u: md's
// unit roundoff, A = Σ p·|v| / Σ p ≥ |ref|), i.e. at most 2 md ulps at A; fp16's subnormal
// probabilities add up to 2⁻²⁵ each; float32 arithmetic adds ~1e-6·A. Float32 md: no md rounding,
// so the scores' own float32 error shows: an error δ in every score moves the output by at most
// δ·(A + |ref|), and a float32 dot product of d terms errs by about √d·u·S (S = scale·Σ|q_i·k_i|,
// the largest over the row's keys; d·u·S at worst) — with peaked scores (Gemma's soft-capping test,
// q × 4, d = 256) that is ~1e-5, as large as the rest; plus 1e-5 for exp and the sums over up to
// 2048 keys. (A host emulation of the kernel's float32 arithmetic gave the H200's maximum errors
// to within 5 %: rounding, not a defect.)
void CheckRow(const Shape& s, const Inputs& in, const std::vector<float>& got, DType md, int b,
              int h, int t, ErrorStats* st) {
  const int kvh = h / (s.heads / s.kv_heads);
  const int64_t base = int64_t{b} * s.len;
  const float* q = in.q.data() + (base + t) * s.q_cols() + int64_t{h} * s.d;
  const int first = s.window > 0 ? std::max(0, t - s.window + 1) : 0;
  std::vector<double> p(static_cast<size_t>(t + 1), 0.0);
  double mx = -INFINITY;
  double score_magnitude = 0.0;  // S above
  const double scale = 1.0 / std::sqrt(s.scalar > 0 ? s.scalar : double{1.0} * s.d);
  for (int j = first; j <= t; ++j) {
    const float* k = in.k.data() + (base + j) * s.kv_cols() + int64_t{kvh} * s.d;
    double dot = 0.0, magnitude = 0.0;
    for (int i = 0; i < s.d; ++i) {
      dot += double{q[i]} * k[i];
      magnitude += std::fabs(double{q[i]} * k[i]);
    }
    score_magnitude = std::max(score_magnitude, magnitude * scale);
    p[j] = dot * scale;
    if (s.softcap > 0) p[j] = s.softcap * std::tanh(p[j] / s.softcap);
    mx = std::max(mx, p[j]);
  }
  double l = 0.0;
  for (int j = 0; j <= t; ++j) {
    p[j] = j < first ? 0.0 : std::exp(p[j] - mx);
    l += p[j];
  }
  const double u = UnitRoundoff(md);
  const float* row = got.data() + (base + t) * s.q_cols() + int64_t{h} * s.d;
  for (int i = 0; i < s.d; ++i) {
    double ref = 0.0, a = 0.0, vmax = 0.0;
    for (int j = first; j <= t; ++j) {
      const double vj = in.v[(base + j) * s.kv_cols() + int64_t{kvh} * s.d + i];
      ref += p[j] * vj;
      a += p[j] * std::fabs(vj);
      vmax = std::max(vmax, std::fabs(vj));
    }
    ref /= l;
    a /= l;
    const double subnormal =
        md == DType::kF16 ? (t + 1 - first) * std::ldexp(1.0, -25) * vmax / l : 0.0;
    const double tol =
        (md == DType::kF32
             ? (1e-5 + std::sqrt(double{1.0} * s.d) * u * score_magnitude) * (a + std::fabs(ref))
             : u * (a + std::fabs(ref)) + subnormal + 1e-6 * a) +
        1e-30;
    const double err = std::fabs(double{row[i]} - ref);
    ++st->checked;
    st->worst = std::max(st->worst, err / tol);
    const double ulp_at_a = 2 * u * std::exp2(std::floor(std::log2(std::max(a, 1e-30))));
    st->max_ulps = std::max(st->max_ulps, err / ulp_at_a);
    if (!(err <= tol)) {
      if (st->failed++ == 0) {
        st->first_failure = "block " + std::to_string(b) + " head " + std::to_string(h) + " row " +
                            std::to_string(t) + " col " + std::to_string(i) + ": got " +
                            std::to_string(row[i]) + ", float64 " + std::to_string(ref) +
                            ", tolerance " + std::to_string(tol);
      }
    }
  }
}

// Float32 bits of an md value stored as 16 bits.
float Md16ToFloat(uint16_t bits, DType md) {
  return md == DType::kF16 ? F16ToFloat(bits) : Bf16ToFloat(bits);
}

// A device copy of `x` in md (16-bit) or float32 (md = float32), as the backend hands them over.
struct DeviceInput {
  DeviceArray array;
  DeviceInput(const std::vector<float>& x, DType md) : array(x.size() * DTypeSize(md)) {
    if (array.ptr == nullptr) return;
    if (md == DType::kF32) {
      ok = cudaMemcpy(array.ptr, x.data(), x.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess;
      return;
    }
    std::vector<uint16_t> bits(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      bits[i] = md == DType::kF16 ? FloatToF16(x[i]) : FloatToBf16(x[i]);
    ok = cudaMemcpy(array.ptr, bits.data(), x.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess;
  }
  bool ok = false;
  const void* ptr() const { return array.ptr; }
};

// The kernel options of a shape, formed as the backend forms them (cuda/device_layer.cc).
cuda::AttentionOptions OptionsOf(const Shape& s) {
  const double scalar = s.scalar > 0 ? s.scalar : s.d;
  cuda::AttentionOptions o;
  o.scale = 1.0f / std::sqrt(static_cast<float>(scalar));
  o.scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(scalar));
  o.softcap = s.softcap;
  o.window = s.window;
  return o;
}

// `tiles`: a tile shape of the tensor-core kernel to run instead of CausalAttention's default.
void CheckAgainstFloat64(const Shape& s, DType md, float q_scale, uint32_t seed,
                         const cuda::AttentionTiles* tiles = nullptr) {
  SCOPED_TRACE(std::string(DTypeName(md)) + " d" + std::to_string(s.d) + " heads " +
               std::to_string(s.heads) + "/" + std::to_string(s.kv_heads) + " " +
               std::to_string(s.blocks) + "x" + std::to_string(s.len) + " softcap " +
               std::to_string(s.softcap) + " window " + std::to_string(s.window));
  const Inputs in = RandomInputs(s, md, q_scale, seed);
  const size_t q_bytes = in.q.size() * sizeof(float);
  const bool f32 = md == DType::kF32;
  const int64_t out_n = s.tokens() * s.q_cols();
  const DeviceInput q(in.q, md), k(in.k, md), v(in.v, md);
  DeviceArray out(q_bytes), out_op(out_n * 2);
  ASSERT_TRUE(q.ok && k.ok && v.ok && out.ptr && out_op.ptr);
  // Poison: all-ones bits are NaN in float32, fp16 and bf16.
  ASSERT_CUDA(cudaMemset(out.ptr, 0xff, q_bytes));
  ASSERT_CUDA(cudaMemset(out_op.ptr, 0xff, out_n * 2));
  void* md_out = f32 ? nullptr : out_op.ptr;
  ASSERT_TRUE(tiles != nullptr
                  ? cuda::CausalAttentionWithTiles(*tiles, q.ptr(), k.ptr(), v.ptr(), out.f32(),
                                                   md_out, s.tokens(), s.len, s.heads, s.kv_heads,
                                                   s.d, md, OptionsOf(s), nullptr)
                  : cuda::CausalAttention(q.ptr(), k.ptr(), v.ptr(), out.f32(), md_out, s.tokens(),
                                          s.len, s.heads, s.kv_heads, s.d, md, OptionsOf(s),
                                          nullptr));
  ASSERT_CUDA(cudaGetLastError());
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<float> got(static_cast<size_t>(out_n));
  ASSERT_CUDA(cudaMemcpy(got.data(), out.ptr, q_bytes, cudaMemcpyDeviceToHost));

  // Every element written, rounded to md, and the md operand holds the same values.
  std::vector<uint16_t> op(f32 ? 0 : static_cast<size_t>(out_n));
  if (!f32) ASSERT_CUDA(cudaMemcpy(op.data(), out_op.ptr, out_n * 2, cudaMemcpyDeviceToHost));
  int64_t bad = 0;
  for (int64_t i = 0; i < out_n; ++i) {
    const float x = got[static_cast<size_t>(i)];
    const bool ok = std::isfinite(x) && RoundTo(md, x) == x &&
                    (f32 || Md16ToFloat(op[static_cast<size_t>(i)], md) == x);
    bad += ok ? 0 : 1;
  }
  ASSERT_EQ(bad, 0) << "elements unwritten, not in md, or differing from the md operand";

  // Rows to check: all for short blocks; at 2048 every 16th row plus the first and last 16.
  std::vector<int> rows;
  for (int t = 0; t < s.len; ++t) {
    if (s.len <= 512 || t < 16 || t >= s.len - 16 || t % 16 == 5) rows.push_back(t);
  }
  const int units = s.blocks * s.heads;
  const int threads =
      static_cast<int>(std::min(16u, std::max(1u, std::thread::hardware_concurrency())));
  std::vector<ErrorStats> stats(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      for (int u = w; u < units; u += threads) {
        for (int t : rows) CheckRow(s, in, got, md, u / s.heads, u % s.heads, t, &stats[w]);
      }
    });
  }
  for (std::thread& th : pool) th.join();
  ErrorStats all;
  for (const ErrorStats& st : stats) {
    all.checked += st.checked;
    all.failed += st.failed;
    all.worst = std::max(all.worst, st.worst);
    all.max_ulps = std::max(all.max_ulps, st.max_ulps);
    if (all.first_failure.empty()) all.first_failure = st.first_failure;
  }
  std::printf(
      "[attention] %-4s d%-3d heads %2d/%d %4dx%-4d q_scale %.0f softcap %.0f window %d: %ld "
      "values, max error %.3f of the tolerance, %.3f md ulp at A\n",
      std::string(DTypeName(md)).c_str(), s.d, s.heads, s.kv_heads, s.blocks, s.len, q_scale,
      s.softcap, s.window, static_cast<long>(all.checked), all.worst, all.max_ulps);
  EXPECT_EQ(all.failed, 0) << all.failed << " of " << all.checked
                           << " values outside the tolerance; first: " << all.first_failure;
}

TEST(CudaAttentionGpuTest, MatchesFloat64ReferenceInF16AndBf16) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 1;
  for (DType md : {DType::kF16, DType::kBF16}) {
    for (int d : {64, 96, 128, 256}) {
      // Qwen2.5-0.5B's 14/2 heads at d = 64; 8/2 at larger d.
      const int heads = d == 64 ? 14 : 8;
      for (const auto& [blocks, len] : {std::pair{3, 1}, {3, 17}, {2, 512}, {1, 2048}}) {
        CheckAgainstFloat64({blocks, len, heads, 2, d}, md, 1.0f, seed++);
      }
      CheckAgainstFloat64({2, 200, heads, 2, d}, md, 4.0f, seed++);  // peaked softmax
    }
  }
}

// Gemma: scores scaled by 1/√query_pre_attn_scalar (not 1/√head_dim), soft-capped at 50 (Gemma 2),
// and sliding windows shorter than the block (the kernel skips the key tiles before a window).
TEST(CudaAttentionGpuTest, GemmaScaleSoftCappingAndSlidingWindow) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 200;
  for (DType md : {DType::kBF16, DType::kF16, DType::kF32}) {
    for (int d : {256, 128}) {
      Shape s{2, 300, 8, 4, d};
      s.scalar = 144;
      s.softcap = 50.0f;
      CheckAgainstFloat64(s, md, 4.0f, seed++);  // peaked scores: the cap bites
      s.softcap = 0.0f;
      s.window = 100;
      CheckAgainstFloat64(s, md, 1.0f, seed++);
      s.window = 17;  // inside one key tile
      s.softcap = 30.0f;
      CheckAgainstFloat64(s, md, 1.0f, seed++);
    }
  }
}

TEST(CudaAttentionGpuTest, EveryCompiledTileShapeMatchesFloat64Reference) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 50;
  for (int d : {64, 96, 128, 256}) {
    for (const cuda::AttentionTiles& t : cuda::AttentionTileChoices(d)) {
      SCOPED_TRACE("tiles " + std::to_string(t.warps) + " warps, " + std::to_string(t.keys) +
                   " keys, " + std::to_string(t.min_blocks) + " blocks");
      CheckAgainstFloat64({2, 300, 4, 2, d}, DType::kBF16, 1.0f, seed++, &t);
      CheckAgainstFloat64({3, 17, 4, 1, d}, DType::kF16, 4.0f, seed++, &t);
    }
  }
}

// Float32 models run float32 arithmetic (no tensor cores, no md rounding): far under the ~1e-3 of
// a TF32 or 16-bit path.
TEST(CudaAttentionGpuTest, Float32ModelsKeepFloat32Precision) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  uint32_t seed = 100;
  for (int d : {64, 96, 128, 256}) {
    for (const auto& [blocks, len] : {std::pair{3, 17}, {2, 512}}) {
      CheckAgainstFloat64({blocks, len, 4, 2, d}, DType::kF32, 1.0f, seed++);
    }
  }
}

TEST(CudaAttentionGpuTest, RefusesUnsupportedHeadDim) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  EXPECT_FALSE(cuda::CausalAttention(nullptr, nullptr, nullptr, nullptr, nullptr, 64, 64, 2, 2, 32,
                                     DType::kBF16, OptionsOf({1, 64, 2, 2, 32}), nullptr));
  EXPECT_FALSE(cuda::AttentionSupportsHeadDim(80));
}

// Median milliseconds of `reps` launches of `launch` on `stream`, after two warm-up runs.
template <typename F>
double MedianMs(F launch, int reps) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  launch();
  launch();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(start);
    launch();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float x = 0.0f;
    cudaEventElapsedTime(&x, start, stop);
    ms.push_back(x);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Times the bf16 tensor-core kernel (md inputs) and the float32 kernel (float32 inputs: the
// previous path of every model) on the same values; the tensor-core kernel must be the faster.
void TimeKernels(const Shape& s) {
  const Inputs in = RandomInputs(s, DType::kBF16, 1.0f, 7, /*uniform=*/true);
  const DeviceInput q(in.q, DType::kBF16), k(in.k, DType::kBF16), v(in.v, DType::kBF16);
  const DeviceInput q32(in.q, DType::kF32), k32(in.k, DType::kF32), v32(in.v, DType::kF32);
  DeviceArray out(in.q.size() * sizeof(float)), out_op(in.q.size() * 2);
  ASSERT_TRUE(q.ok && k.ok && v.ok && q32.ok && k32.ok && v32.ok && out.ptr && out_op.ptr);
  // Every compiled tile shape; the first is CausalAttention's default.
  std::vector<double> tc;
  for (const cuda::AttentionTiles& t : cuda::AttentionTileChoices(s.d)) {
    tc.push_back(MedianMs(
        [&] {
          cuda::CausalAttentionWithTiles(t, q.ptr(), k.ptr(), v.ptr(), nullptr, out_op.ptr,
                                         s.tokens(), s.len, s.heads, s.kv_heads, s.d, DType::kBF16,
                                         OptionsOf(s), nullptr);
        },
        20));
  }
  ASSERT_FALSE(tc.empty());
  const double scalar = MedianMs(
      [&] {
        cuda::CausalAttention(q32.ptr(), k32.ptr(), v32.ptr(), out.f32(), nullptr, s.tokens(),
                              s.len, s.heads, s.kv_heads, s.d, DType::kF32, OptionsOf(s), nullptr);
      },
      5);
  ASSERT_CUDA(cudaGetLastError());
  ASSERT_CUDA(cudaDeviceSynchronize());
  // Useful work: Q·Kᵀ and P·V over the causal half, 2 FLOP per multiply-add.
  const double flop = 4.0 * s.d * s.heads * s.blocks * (double{1.0} * s.len * (s.len + 1) / 2);
  std::string shapes;
  const std::vector<cuda::AttentionTiles> choices = cuda::AttentionTileChoices(s.d);
  for (size_t i = 0; i < tc.size(); ++i) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%s%dw/%dk/%db %.3f ms", i == 0 ? "" : ", ", choices[i].warps,
                  choices[i].keys, choices[i].min_blocks, tc[i]);
    shapes += buf;
  }
  std::printf(
      "[attention-timing] d%d heads %d/%d %dx%d: tensor-core bf16 %.3f ms (%.1f TFLOP/s), "
      "float32 kernel %.3f ms (%.1f TFLOP/s), %.1fx; tile shapes: %s\n",
      s.d, s.heads, s.kv_heads, s.blocks, s.len, tc[0], flop / tc[0] / 1e9, scalar,
      flop / scalar / 1e9, scalar / tc[0], shapes.c_str());
  EXPECT_LT(tc[0], scalar);
}

TEST(CudaAttentionGpuTest, TensorCoreKernelTiming) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  TimeKernels({64, 2048, 14, 2, 64});   // Qwen2.5-0.5B, a quarter of 256 × 2048
  TimeKernels({128, 512, 14, 2, 64});   // Qwen2.5-0.5B, 128 × 512
  TimeKernels({16, 2048, 28, 4, 128});  // Qwen2.5-7B geometry
  TimeKernels({16, 512, 8, 4, 256});    // Gemma 2 2B geometry, 128 × 512 / 8
}

}  // namespace
}  // namespace quantd::engine
