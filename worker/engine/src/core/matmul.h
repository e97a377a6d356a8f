// Float32 matrix products on the host through BLAS (OpenBLAS sgemm), row-major.
#ifndef QUANTD_ENGINE_CORE_MATMUL_H_
#define QUANTD_ENGINE_CORE_MATMUL_H_

#include <cstdint>

namespace quantd::engine {

// c[m, n] = a[m, k] · b[n, k]ᵀ (+ beta · c). The nn.Linear product: b is a weight [out, in].
void MatMulTransB(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
                  float beta = 0.0f);

// c[m, n] = a[m, k] · b[n, k]ᵀ where the rows of a are lda apart (a column block of a wider
// matrix).
void MatMulStrided(const float* a, int64_t lda, const float* b, float* c, int64_t m, int64_t n,
                   int64_t k);

// c[m, n] = a[m, k] · b[k, n] (+ beta · c).
void MatMul(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
            float beta = 0.0f);

// c[k, k] = a[m, k]ᵀ · a[m, k] with leading dimension lda (Gram matrix of the rows of a), full
// (both triangles filled).
void Gram(const float* a, int64_t m, int64_t k, int64_t lda, float* c);

}  // namespace quantd::engine

#endif  // QUANTD_ENGINE_CORE_MATMUL_H_
