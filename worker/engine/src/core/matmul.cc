#include "core/matmul.h"

#include <cblas.h>

namespace quantd::engine {

void MatMulTransB(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
                  float beta) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(k), beta, c,
              static_cast<int>(n));
}

void MatMulStrided(const float* a, int64_t lda, const float* b, float* c, int64_t m, int64_t n,
                   int64_t k) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(k), 0.0f, c,
              static_cast<int>(n));
}

void MatMul(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, float beta) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(n), beta, c,
              static_cast<int>(n));
}

void Gram(const float* a, int64_t m, int64_t k, int64_t lda, float* c) {
  const int kk = static_cast<int>(k);
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, kk, static_cast<int>(m), 1.0f, a,
              static_cast<int>(lda), 0.0f, c, kk);
  for (int i = 0; i < kk; ++i) {
    for (int j = 0; j < i; ++j) c[i * k + j] = c[j * k + i];
  }
}

}  // namespace quantd::engine
