#pragma once
// Matrix multiply on row-major buffers (internal): C = alpha·op(A)·op(B) + beta·C, where op(A) is
// A [m, k] or, with trans_a, Aᵀ of A stored [k, m] (lda is A's row stride either way).
#include <cstdint>

#include "core/tensor.h"

namespace plateau::cpu {

// One thread, the caller's thread.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc);

// Splits C into fixed-size blocks of rows or columns (sizes from the problem only) and runs them
// on the library's threads: same result for every thread count.
template <typename T>
void gemm_parallel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// out [B, m, n] (contiguous, overwritten) = a[b] ⊗ c[b] for a [B, m], c [B, n]: one outer product per
// example (per-example weight gradients of a linear layer). Bound by writing out, so it is a plain
// row loop, not a GEMM with k = 1.
void batched_outer(const Tensor& a, const Tensor& c, const Tensor& out);

}  // namespace plateau::cpu
