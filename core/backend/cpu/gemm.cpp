// GEMM. With AVX-512 (the development and CI CPUs, built with -march=native): a packed,
// register-blocked kernel in the manner of GotoBLAS/BLIS. Without it: Eigen's product.
//
// C[m, n] = alpha·op(A)·op(B) + beta·C, row-major. The loops, outermost first:
//   n in blocks of NC, k in blocks of KC  -> pack B[KC, NC] into NR-wide panels (stays in L2)
//   m in blocks of MC                     -> pack A[MC, KC] into MR-high panels (stays in L2)
//   n in steps of NR, m in steps of MR    -> micro-kernel: an MR×NR tile of C in registers, its B
//                                            panel in L1, A panels streaming from L2
// Each element of C sums its k products in the same order whatever the tile position, so any split
// of C into blocks (gemm_parallel) gives bit-identical results.
#include "core/backend/cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#else
// GCC 12 reports false -Wmaybe-uninitialized inside its vector intrinsics as Eigen inlines them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#endif

#include "core/threads.h"

namespace plateau::cpu {

namespace {

#if defined(__AVX512F__)

// One zmm register of T and the operations the micro-kernel needs.
template <typename T> struct Zmm;
template <> struct Zmm<float> {
  using reg = __m512;
  static constexpr int lanes = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
};
template <> struct Zmm<double> {
  using reg = __m512d;
  static constexpr int lanes = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static reg broadcast(const double* p) { return _mm512_set1_pd(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg set1(double v) { return _mm512_set1_pd(v); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
};

constexpr int64_t MR = 12;   // rows of the register tile
constexpr int64_t KC = 256;  // depth of one packed block
constexpr int64_t NC = 1024; // columns of one packed B block
constexpr int64_t MC = 240;  // rows of one packed A block (a multiple of MR)

template <typename T> constexpr int64_t NR = 2 * Zmm<T>::lanes;  // two registers per row

// Packs rows [i0, i0+MR) × depth [k0, k0+kc) of op(A) as [kc][MR], zero-padding missing rows.
template <typename T>
void pack_a(bool trans, const T* a, int64_t lda, int64_t i0, int64_t rows, int64_t k0, int64_t kc, T* out) {
  for (int64_t p = 0; p < kc; ++p) {
    T* dst = out + p * MR;
    for (int64_t i = 0; i < rows; ++i) dst[i] = trans ? a[(k0 + p) * lda + i0 + i] : a[(i0 + i) * lda + k0 + p];
    for (int64_t i = rows; i < MR; ++i) dst[i] = T(0);
  }
}

// Packs depth [k0, k0+kc) × columns [j0, j0+nc) of op(B) as NR-wide panels [panel][kc][NR].
template <typename T>
void pack_b(bool trans, const T* b, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* out) {
  constexpr int64_t nr = NR<T>;
  for (int64_t jp = 0; jp < nc; jp += nr) {
    int64_t cols = std::min(nr, nc - jp);
    T* panel = out + (jp / nr) * kc * nr;
    for (int64_t p = 0; p < kc; ++p) {
      T* dst = panel + p * nr;
      if (!trans && cols == nr) {
        std::memcpy(dst, b + (k0 + p) * ldb + j0 + jp, nr * sizeof(T));
        continue;
      }
      for (int64_t j = 0; j < cols; ++j) dst[j] = trans ? b[(j0 + jp + j) * ldb + k0 + p] : b[(k0 + p) * ldb + j0 + jp + j];
      for (int64_t j = cols; j < nr; ++j) dst[j] = T(0);
    }
  }
}

// How a finished tile is written: C = alpha·tile (first depth block, beta 0), C = beta·C + alpha·tile
// (first block), or C += alpha·tile (later blocks).
enum class Store { assign, scale_add, accumulate };

// C tile (rows × cols of C at c) ⊕= alpha · Σ_p a[p][:]ᵀ b[p][:] over the packed panels.
template <typename T>
void micro_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t rows, int64_t cols, T alpha, T beta,
                  Store mode) {
  using V = Zmm<T>;
  constexpr int64_t nr = NR<T>;
  typename V::reg acc[MR][2];
  for (int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = V::zero();
  for (int64_t p = 0; p < kc; ++p) {
    typename V::reg b0 = V::load(b + p * nr), b1 = V::load(b + p * nr + V::lanes);
    const T* ap = a + p * MR;
#pragma GCC unroll 12
    for (int64_t i = 0; i < MR; ++i) {
      typename V::reg ai = V::broadcast(ap + i);
      acc[i][0] = V::fma(ai, b0, acc[i][0]);
      acc[i][1] = V::fma(ai, b1, acc[i][1]);
    }
  }
  typename V::reg va = V::set1(alpha), vb = V::set1(beta);
  auto combine = [&](typename V::reg x, const T* old) {
    switch (mode) {
      case Store::assign: return V::mul(va, x);
      case Store::scale_add: return V::fma(va, x, V::mul(vb, V::load(old)));
      case Store::accumulate: break;
    }
    return V::fma(va, x, V::load(old));
  };
  if (rows == MR && cols == nr) {
    for (int64_t i = 0; i < MR; ++i) {
      T* row = c + i * ldc;
      V::store(row, combine(acc[i][0], row));
      V::store(row + V::lanes, combine(acc[i][1], row + V::lanes));
    }
    return;
  }
  alignas(64) T tile[MR * nr];
  for (int64_t i = 0; i < MR; ++i) {
    V::store(tile + i * nr, acc[i][0]);
    V::store(tile + i * nr + V::lanes, acc[i][1]);
  }
  for (int64_t i = 0; i < rows; ++i) {
    T* row = c + i * ldc;
    const T* t = tile + i * nr;
    for (int64_t j = 0; j < cols; ++j) {
      T x = alpha * t[j];
      row[j] = mode == Store::assign ? x : mode == Store::scale_add ? beta * row[j] + x : row[j] + x;
    }
  }
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  constexpr int64_t nr = NR<T>;
  thread_local std::vector<T> packed_b, packed_a;
  packed_b.resize(static_cast<size_t>(KC * (NC + nr)));
  packed_a.resize(static_cast<size_t>(MC * KC));
  for (int64_t j0 = 0; j0 < n; j0 += NC) {
    int64_t nc = std::min(NC, n - j0);
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
      int64_t kc = std::min(KC, k - k0);
      Store mode = k0 > 0 || beta == T(1) ? Store::accumulate : beta == T(0) ? Store::assign : Store::scale_add;
      pack_b(trans_b, b, ldb, k0, kc, j0, nc, packed_b.data());
      for (int64_t i0 = 0; i0 < m; i0 += MC) {
        int64_t mc = std::min(MC, m - i0);
        for (int64_t ip = 0; ip < mc; ip += MR)
          pack_a(trans_a, a, lda, i0 + ip, std::min(MR, mc - ip), k0, kc, packed_a.data() + ip * kc);
        // One B panel stays in L1 while the A panels of this block stream from L2.
        for (int64_t jp = 0; jp < nc; jp += nr)
          for (int64_t ip = 0; ip < mc; ip += MR)
            micro_kernel<T>(kc, packed_a.data() + ip * kc, packed_b.data() + (jp / nr) * kc * nr,
                            c + (i0 + ip) * ldc + j0 + jp, ldc, std::min(MR, mc - ip), std::min(nr, nc - jp), alpha,
                            beta, mode);
      }
    }
  }
}

#else  // no AVX-512: Eigen

template <typename T> using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T> using ConstMap = Eigen::Map<const RowMajor<T>, 0, Eigen::OuterStride<>>;
template <typename T> using Map = Eigen::Map<RowMajor<T>, 0, Eigen::OuterStride<>>;

template <typename T, typename A, typename B> void product(Map<T>& c, const A& a, const B& b, T alpha, T beta) {
  if (beta == T(0)) {
    c.noalias() = alpha * (a * b);
  } else {
    if (beta != T(1)) c *= beta;
    c.noalias() += alpha * (a * b);
  }
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  Map<T> cm(c, m, n, Eigen::OuterStride<>(ldc));
  ConstMap<T> am(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  ConstMap<T> bm(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) product<T>(cm, am, bm, alpha, beta);
  else if (trans_a && !trans_b) product<T>(cm, am.transpose(), bm, alpha, beta);
  else if (!trans_a && trans_b) product<T>(cm, am, bm.transpose(), alpha, beta);
  else product<T>(cm, am.transpose(), bm.transpose(), alpha, beta);
}

#endif

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  gemm_impl<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void gemm_parallel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  // Blocks of at least ~4 MFLOP; split the larger of m and n, in multiples of 96 rows or 64 columns.
  const int64_t flops = 2 * m * n * k;
  const int64_t target_blocks = flops / (4 << 20);
  if (target_blocks < 2) return gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (m >= n) {
    int64_t block = std::max<int64_t>(96, (m / target_blocks + 95) / 96 * 96);
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
