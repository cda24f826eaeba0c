// GEMM through Eigen maps: Eigen's packed, AVX-512-blocked kernel, with -march=native.
#include "core/backend/cpu/gemm.h"

// GCC 12 reports false -Wmaybe-uninitialized inside its AVX-512 intrinsics as Eigen inlines them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>

#include <Eigen/Core>

#include "core/threads.h"

namespace plateau::cpu {

namespace {

template <typename T> using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T> using ConstMap = Eigen::Map<const RowMajor<T>, 0, Eigen::OuterStride<>>;
template <typename T> using Map = Eigen::Map<RowMajor<T>, 0, Eigen::OuterStride<>>;

template <typename T, typename A, typename B>
void product(Map<T>& c, const A& a, const B& b, T alpha, T beta) {
  if (beta == T(0)) {
    if (alpha == T(1)) c.noalias() = a * b;
    else c.noalias() = alpha * (a * b);
  } else {
    if (beta != T(1)) c *= beta;
    c.noalias() += alpha * (a * b);
  }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  Map<T> cm(c, m, n, Eigen::OuterStride<>(ldc));
  if (k == 0) {
    if (beta == T(0)) cm.setZero(); else cm *= beta;
    return;
  }
  ConstMap<T> am(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  ConstMap<T> bm(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) product<T>(cm, am, bm, alpha, beta);
  else if (trans_a && !trans_b) product<T>(cm, am.transpose(), bm, alpha, beta);
  else if (!trans_a && trans_b) product<T>(cm, am, bm.transpose(), alpha, beta);
  else product<T>(cm, am.transpose(), bm.transpose(), alpha, beta);
}

template <typename T>
void gemm_parallel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  // Blocks of at least ~4 MFLOP; split the larger of m and n, in multiples of 64.
  const int64_t flops = 2 * m * n * k;
  const int64_t target_blocks = flops / (4 << 20);
  if (target_blocks < 2) return gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (m >= n) {
    int64_t block = std::max<int64_t>(64, (m / target_blocks + 63) / 64 * 64);
    parallel_for(m, block, [&](int64_t i0, int64_t i1) {
      const T* ab = trans_a ? a + i0 : a + i0 * lda;
      gemm(trans_a, trans_b, i1 - i0, n, k, alpha, ab, lda, b, ldb, beta, c + i0 * ldc, ldc);
    });
  } else {
    int64_t block = std::max<int64_t>(64, (n / target_blocks + 63) / 64 * 64);
    parallel_for(n, block, [&](int64_t j0, int64_t j1) {
      const T* bb = trans_b ? b + j0 * ldb : b + j0;
      gemm(trans_a, trans_b, m, j1 - j0, k, alpha, a, lda, bb, ldb, beta, c + j0, ldc);
    });
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);
template void gemm_parallel<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                   int64_t, float, float*, int64_t);
template void gemm_parallel<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                    const double*, int64_t, double, double*, int64_t);

}  // namespace plateau::cpu
