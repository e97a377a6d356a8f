// The CUDA backend's vectorised layer kernels and GEMM shortcuts against the host arithmetic they
// replace: RopeQkOperand bit for bit against the CPU reference's ApplyRope (16-byte vector path and
// its scalar fallback), AddSquaredError against a float64 host sum (only the summation order may
// differ), Gemm::LinearPair against two Gemm::Linear calls, and Gemm::LinearBias's cached plans
// with changing bias pointers. Also times the RoPE and loss kernels at the benchmark's geometry.
// Built only with the CUDA backend; skips itself where no GPU is present.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/layer_ops.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "gtest/gtest.h"
#include "testing/cuda_gpu_test_support.h"

namespace quantd::engine {
namespace {

uint16_t ToBits(float v, DType md) { return md == DType::kF16 ? FloatToF16(v) : FloatToBf16(v); }
float FromBits(uint16_t b, DType md) { return md == DType::kF16 ? F16ToFloat(b) : Bf16ToFloat(b); }

std::vector<uint16_t> ToBits(const std::vector<float>& x, DType md) {
  std::vector<uint16_t> bits(x.size());
  for (size_t i = 0; i < x.size(); ++i) bits[i] = ToBits(x[i], md);
  return bits;
}

std::vector<float> RandomMd(size_t n, DType md, float scale, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = RoundTo(md, normal(*rng));
  return x;
}

bool Upload(const void* src, size_t bytes, void* dst) {
  return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
}
bool Download(const void* src, size_t bytes, void* dst) {
  return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
}

// Median of `reps` launches of `launch` in milliseconds (CUDA events, after two warm-ups).
template <typename F>
float MedianMs(int reps, F launch) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 2; ++i) launch();
  std::vector<float> ms(static_cast<size_t>(reps));
  for (float& m : ms) {
    cudaEventRecord(start);
    launch();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    cudaEventElapsedTime(&m, start, stop);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct RopeCase {
  DType md;
  int blocks, len, heads, kv_heads, d;
};

// RopeQkOperand on md q/k equals the CPU's ApplyRope element for element.
void CheckRope(const RopeCase& c, bool time_it = false) {
  SCOPED_TRACE(std::string(DTypeName(c.md)) + " d" + std::to_string(c.d) + " heads " +
               std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " " +
               std::to_string(c.blocks) + "x" + std::to_string(c.len));
  std::mt19937 rng(7 + c.d + c.len);
  const int64_t tokens = int64_t{c.blocks} * c.len;
  RopeTable table;
  table.len = c.len;
  table.head_dim = c.d;
  table.cos = RandomMd(static_cast<size_t>(c.len * c.d), c.md, 0.7f, &rng);
  table.sin = RandomMd(table.cos.size(), c.md, 0.7f, &rng);
  Tensor q({tokens, int64_t{c.heads} * c.d}), k({tokens, int64_t{c.kv_heads} * c.d});
  q.data = RandomMd(q.data.size(), c.md, 3.0f, &rng);
  k.data = RandomMd(k.data.size(), c.md, 3.0f, &rng);
  const std::vector<uint16_t> q_bits = ToBits(q.data, c.md), k_bits = ToBits(k.data, c.md);
  DeviceArray dq(q_bits.size() * 2), dk(k_bits.size() * 2), dcos(table.cos.size() * 4),
      dsin(table.sin.size() * 4);
  ASSERT_TRUE(dq.ptr && dk.ptr && dcos.ptr && dsin.ptr);
  ASSERT_TRUE(Upload(q_bits.data(), q_bits.size() * 2, dq.ptr));
  ASSERT_TRUE(Upload(k_bits.data(), k_bits.size() * 2, dk.ptr));
  ASSERT_TRUE(Upload(table.cos.data(), table.cos.size() * 4, dcos.ptr));
  ASSERT_TRUE(Upload(table.sin.data(), table.sin.size() * 4, dsin.ptr));
  const auto* cos = static_cast<const float*>(dcos.ptr);
  const auto* sin = static_cast<const float*>(dsin.ptr);
  cuda::RopeQkOperand(dq.ptr, dk.ptr, cos, sin, tokens, c.heads, c.kv_heads, c.d, c.len, c.md,
                      nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> q_got(q_bits.size()), k_got(k_bits.size());
  ASSERT_TRUE(Download(dq.ptr, q_got.size() * 2, q_got.data()));
  ASSERT_TRUE(Download(dk.ptr, k_got.size() * 2, k_got.data()));
  ApplyRope(table, c.heads, c.md, &q);
  ApplyRope(table, c.kv_heads, c.md, &k);
  for (auto [got, want, name] : {std::tuple{&q_got, &q, "q"}, {&k_got, &k, "k"}}) {
    int64_t differ = 0;
    for (size_t i = 0; i < got->size(); ++i) {
      const float g = FromBits((*got)[i], c.md);
      if (ToBits(g, c.md) != ToBits(want->data[i], c.md)) {
        if (differ++ == 0) {
          ADD_FAILURE() << name << "[" << i << "]: gpu " << g << ", cpu " << want->data[i];
        }
      }
    }
    EXPECT_EQ(differ, 0) << name << ": elements differing from the CPU reference";
  }
  if (time_it) {
    const float ms = MedianMs(20, [&] {
      cuda::RopeQkOperand(dq.ptr, dk.ptr, cos, sin, tokens, c.heads, c.kv_heads, c.d, c.len, c.md,
                          nullptr);
    });
    const double bytes = 2.0 * 2.0 * static_cast<double>(q_bits.size() + k_bits.size());
    std::printf("[kernel-timing] RopeQkOperand %s %dx%d heads %d/%d d%d: %.4f ms (%.0f GB/s)\n",
                std::string(DTypeName(c.md)).c_str(), c.blocks, c.len, c.heads, c.kv_heads, c.d, ms,
                bytes / ms * 1e-6);
  }
}

TEST(CudaKernelsGpu, RopeQkOperandMatchesCpuReference) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  for (DType md : {DType::kBF16, DType::kF16}) {
    CheckRope({md, 3, 17, 14, 2, 64});
    CheckRope({md, 2, 40, 8, 2, 128});
    CheckRope({md, 2, 9, 4, 4, 40});  // head_dim % 16 != 0: the scalar fallback
  }
  CheckRope({DType::kBF16, 128, 512, 14, 2, 64}, /*time_it=*/true);
}

// Σ md(clamp(ref) − clamp(out))² on the host, accumulated in long double: a float64 running sum
// over millions of terms after a ±65504 term drifts by more than the device's blocked sum does.
double HostSquaredError(const std::vector<float>& ref, const std::vector<float>& out, DType md) {
  const float hi = md == DType::kF16 ? 65504.0f : 3.38953139e38f;
  long double sum = 0.0L;
  for (size_t i = 0; i < ref.size(); ++i) {
    const long double d = RoundTo(md, std::clamp(ref[i], -hi, hi) - std::clamp(out[i], -hi, hi));
    sum += d * d;
  }
  return static_cast<double>(sum);
}

// AddSquaredError over md (or float32) arrays at element offset `offset` (1: misaligned, the
// scalar path) equals the float64 host sum up to summation order.
void CheckSquaredError(DType md, DType type, size_t n, size_t offset, bool time_it = false) {
  SCOPED_TRACE(std::string(DTypeName(md)) + " in " + std::string(DTypeName(type)) + " n " +
               std::to_string(n) + " offset " + std::to_string(offset));
  std::mt19937 rng(static_cast<uint32_t>(n + offset));
  std::vector<float> ref = RandomMd(n + offset, md, 2.0f, &rng);
  std::vector<float> out = RandomMd(n + offset, md, 2.0f, &rng);
  if (md == DType::kF16 && n > 10) {
    ref[offset + 3] = INFINITY;  // clamped to ±65504 before the difference
    out[offset + 7] = -INFINITY;
  }
  const size_t e = DTypeSize(type);
  DeviceArray dref((n + offset) * e), dout((n + offset) * e), acc(sizeof(double));
  ASSERT_TRUE(dref.ptr && dout.ptr && acc.ptr);
  if (type == DType::kF32) {
    ASSERT_TRUE(Upload(ref.data(), ref.size() * 4, dref.ptr));
    ASSERT_TRUE(Upload(out.data(), out.size() * 4, dout.ptr));
  } else {
    ASSERT_TRUE(Upload(ToBits(ref, md).data(), ref.size() * 2, dref.ptr));
    ASSERT_TRUE(Upload(ToBits(out, md).data(), out.size() * 2, dout.ptr));
  }
  ASSERT_EQ(cudaMemset(acc.ptr, 0, sizeof(double)), cudaSuccess);
  auto* sum = static_cast<double*>(acc.ptr);
  cuda::AddSquaredError(dref.bytes() + offset * e, dout.bytes() + offset * e, type,
                        static_cast<int64_t>(n), md, sum, nullptr);
  double got = 0.0;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_TRUE(Download(sum, sizeof(double), &got));
  const double want = HostSquaredError(std::vector<float>(ref.begin() + offset, ref.end()),
                                       std::vector<float>(out.begin() + offset, out.end()), md);
  EXPECT_NEAR(got, want, 1e-12 * want);
  if (time_it) {
    const float ms = MedianMs(20, [&] {
      cuda::AddSquaredError(dref.ptr, dout.ptr, type, static_cast<int64_t>(n), md, sum, nullptr);
    });
    std::printf("[kernel-timing] AddSquaredError %s n %zu: %.4f ms (%.0f GB/s)\n",
                std::string(DTypeName(type)).c_str(), n, ms,
                2.0 * static_cast<double>(n * e) / ms * 1e-6);
  }
}

TEST(CudaKernelsGpu, SquaredErrorMatchesHostSum) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  for (DType md : {DType::kBF16, DType::kF16}) {
    for (DType type : {md, DType::kF32}) {
      CheckSquaredError(md, type, 5, 0);
      CheckSquaredError(md, type, 8 * 1000 + 5, 0);
      CheckSquaredError(md, type, 8 * 1000 + 5, 1);
      CheckSquaredError(md, type, 3'000'017, 0);
    }
  }
  CheckSquaredError(DType::kBF16, DType::kBF16, 65536 * 896, 0, /*time_it=*/true);
}

// Gemm::LinearPair gives the two products Gemm::Linear gives, in either order of the weights'
// addresses; LinearBias's cached plan takes each call's bias.
TEST(CudaKernelsGpu, GemmPairAndCachedBiasPlans) {
  if (!HaveDevice()) GTEST_SKIP() << "no CUDA device";
  const DType md = DType::kBF16;
  const int64_t n = 1000, out = 640, in = 256;
  std::mt19937 rng(3);
  const std::vector<uint16_t> x = ToBits(RandomMd(n * in, md, 1.0f, &rng), md);
  const std::vector<uint16_t> w = ToBits(RandomMd(2 * out * in, md, 0.1f, &rng), md);
  DeviceArray dx(x.size() * 2), dw(w.size() * 2), y_pair(2 * n * out * 2), y_one(2 * n * out * 2);
  ASSERT_TRUE(dx.ptr && dw.ptr && y_pair.ptr && y_one.ptr);
  ASSERT_TRUE(Upload(x.data(), x.size() * 2, dx.ptr));
  ASSERT_TRUE(Upload(w.data(), w.size() * 2, dw.ptr));
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  {
    cuda::Gemm gemm;
    ASSERT_TRUE(gemm.Init(stream).ok());
    char* w0 = dw.bytes();
    char* w1 = dw.bytes() + out * in * 2;
    const size_t half = static_cast<size_t>(n * out * 2);
    for (bool swapped : {false, true}) {
      SCOPED_TRACE(swapped ? "second weight first in memory" : "first weight first in memory");
      char* a = swapped ? w1 : w0;
      char* b = swapped ? w0 : w1;
      ASSERT_TRUE(
          gemm.LinearPair(dx.ptr, a, b, y_pair.bytes(), y_pair.bytes() + half, n, out, in, md, md)
              .ok());
      ASSERT_TRUE(gemm.Linear(dx.ptr, a, y_one.bytes(), n, out, in, md, md).ok());
      ASSERT_TRUE(gemm.Linear(dx.ptr, b, y_one.bytes() + half, n, out, in, md, md).ok());
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      std::vector<uint16_t> got(2 * n * out), want(got.size());
      ASSERT_TRUE(Download(y_pair.ptr, got.size() * 2, got.data()));
      ASSERT_TRUE(Download(y_one.ptr, want.size() * 2, want.data()));
      int64_t equal = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const float g = FromBits(got[i], md), r = FromBits(want[i], md);
        equal += got[i] == want[i];
        ASSERT_LE(std::fabs(g - r), std::ldexp(std::fabs(r), -7) + 1e-30f) << "element " << i;
      }
      std::printf("[kernel-parity] LinearPair vs two Linear: %lld of %zu md outputs bit-equal\n",
                  static_cast<long long>(equal), got.size());
    }
    // Same shape, three bias vectors: the second call must not reuse the first's bias.
    const std::vector<uint16_t> bias_a = ToBits(RandomMd(out, md, 1.0f, &rng), md);
    std::vector<uint16_t> bias_b(static_cast<size_t>(out), ToBits(64.0f, md));
    DeviceArray da(out * 2), db(out * 2), y(3 * n * out * 2);
    ASSERT_TRUE(da.ptr && db.ptr && y.ptr);
    ASSERT_TRUE(Upload(bias_a.data(), bias_a.size() * 2, da.ptr));
    ASSERT_TRUE(Upload(bias_b.data(), bias_b.size() * 2, db.ptr));
    const size_t one = static_cast<size_t>(n * out * 2);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          gemm.LinearBias(dx.ptr, w0, i == 1 ? db.ptr : da.ptr, y.bytes() + i * one, n, out, in, md)
              .ok());
    }
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<uint16_t> ys(static_cast<size_t>(3 * n * out));
    ASSERT_TRUE(Download(y.ptr, ys.size() * 2, ys.data()));
    const size_t m = static_cast<size_t>(n * out);
    for (size_t i = 0; i < m; ++i) {
      ASSERT_EQ(ys[i], ys[2 * m + i]) << "the same call twice differs at " << i;
      // bias 64 against a bias of |b| ≲ 4: the outputs near 64 (products are ≲ 1).
      const float with_b = FromBits(ys[m + i], md);
      ASSERT_GT(with_b, 50.0f) << "the second bias was not applied at " << i;
    }
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace quantd::engine
