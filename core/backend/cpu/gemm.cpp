// GEMM. With AVX-512 (the development and CI CPUs, built with -march=native): a packed,
// register-blocked kernel in the manner of GotoBLAS/BLIS. Without it: Eigen's product.
//
// C[m, n] = alpha·op(A)·op(B) + beta·C, row-major. The loops, outermost first:
//   n in blocks of NC, k in blocks of KC  -> pack B[KC, NC] into NR-wide panels (stays in L2)
//   m in chunks of MCHUNK                 -> pack A[MCHUNK, KC] into MR-high panels
//   tasks of MC rows × NB columns of C    -> run on the library's threads (gemm_parallel)
//   n in steps of NR, m in steps of MR    -> micro-kernel: an MR×NR tile of C in registers
// Each element of C sums its k products in the same order whatever the tile position, so any split
// of C into blocks (gemm_parallel) gives bit-identical results.
#include "core/backend/cpu/gemm.h"
#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/loops.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

// GCC 12 reports false -W(maybe-)uninitialized inside its own AVX-512 intrinsics (their
// "undefined" source operands) wherever they are inlined, here and through Eigen.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if defined(__AVX512F__)
#include <immintrin.h>
#else
#include <Eigen/Core>
#endif

#include "core/threads.h"

namespace plateau::cpu {

namespace {

#if defined(__AVX512F__)

// One zmm register of T and the operations the micro-kernel needs.
template <typename T>
struct Zmm;
template <>
struct Zmm<float> {
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
template <>
struct Zmm<double> {
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

constexpr int64_t MR = 8;         // rows of the register tile
constexpr int64_t KC = 256;       // depth of one packed block
constexpr int64_t NC = 1024;      // columns of one packed B block
constexpr int64_t MC = 240;       // rows of one packed A block (a multiple of MR)
constexpr int64_t NB = 128;       // columns of C per parallel task (a multiple of both NRs)
constexpr int64_t MCHUNK = 1920;  // rows of A packed at once (a multiple of MR and MC)

template <typename T>
constexpr int64_t NR = 2 * Zmm<T>::lanes;  // two registers per row

// Transposes a 16×16 block of floats in registers: dst[c·ld_dst + r] = rows[r][c], writing the
// first `width` (8 or 16) values of each output row; a null row reads as zeros. Pairs of rows
// interleave (unpack), then 4×4 blocks within each 128-bit lane (shuffle_ps), then the lanes
// (shuffle_f32x4): 64 shuffles for 256 elements.
inline void transpose16x16(const float* const* rows, float* dst, int64_t ld_dst, int width) {
  __m512 r[16], t[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = rows[i] ? _mm512_loadu_ps(rows[i]) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // lane L: r_i[4L], r_i+1[4L], r_i[4L+1], r_i+1[4L+1]
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  // lane L: the same for columns 4L+2, 4L+3
  }
  for (int g = 0; g < 16; g += 4) {  // u[g + c], lane L: column 4L + c of rows g..g+3
    u[g + 0] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
    u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
    u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
  }
  auto store = [&](int64_t c, __m512 v) {
    if (width == 16)
      _mm512_storeu_ps(dst + c * ld_dst, v);
    else
      _mm256_storeu_ps(dst + c * ld_dst, _mm512_castps512_ps256(v));
  };
  for (int c = 0; c < 4; ++c) {
    __m512 p0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), p1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    __m512 q0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44), q1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    store(0 + c, _mm512_shuffle_f32x4(p0, q0, 0x88));
    store(4 + c, _mm512_shuffle_f32x4(p0, q0, 0xDD));
    store(8 + c, _mm512_shuffle_f32x4(p1, q1, 0x88));
    store(12 + c, _mm512_shuffle_f32x4(p1, q1, 0xDD));
  }
}

// Packs rows [i0, i0+MR) × depth [k0, k0+kc) of op(A) as [kc][MR], zero-padding missing rows.
template <typename T>
void pack_a(bool trans, const T* a, int64_t lda, int64_t i0, int64_t rows, int64_t k0, int64_t kc, T* out) {
  int64_t p_done = 0;
  if constexpr (std::is_same_v<T, float> && MR <= 16) {
    if (!trans) {  // rows of A are contiguous along k: 16 depths at a time through registers
      const float* row[16] = {};
      for (; p_done + 16 <= kc; p_done += 16) {
        for (int64_t i = 0; i < rows; ++i) row[i] = a + (i0 + i) * lda + k0 + p_done;
        transpose16x16(row, out + p_done * MR, MR, MR);
      }
    }
  }
  for (int64_t p = p_done; p < kc; ++p) {
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
    if (trans) {
      // Bᵀ is stored [n, k]: read each of its rows along k (contiguous), write a panel column;
      // for f32, whole 16×16 blocks go through registers.
      int64_t p_done = 0;
      if constexpr (std::is_same_v<T, float>) {
        if (cols == nr) {
          const float* row[16];
          for (; p_done + 16 <= kc; p_done += 16)
            for (int64_t jb = 0; jb < nr; jb += 16) {
              for (int64_t j = 0; j < 16; ++j) row[j] = b + (j0 + jp + jb + j) * ldb + k0 + p_done;
              transpose16x16(row, panel + p_done * nr + jb, nr, 16);
            }
        }
      }
      for (int64_t j = 0; j < cols; ++j) {
        const T* src = b + (j0 + jp + j) * ldb + k0;
        for (int64_t p = p_done; p < kc; ++p) panel[p * nr + j] = src[p];
      }
      for (int64_t j = cols; j < nr; ++j)
        for (int64_t p = 0; p < kc; ++p) panel[p * nr + j] = T(0);
      continue;
    }
    for (int64_t p = 0; p < kc; ++p) {
      T* dst = panel + p * nr;
      const T* src = b + (k0 + p) * ldb + j0 + jp;
      for (int64_t j = 0; j < cols; ++j) dst[j] = src[j];
      for (int64_t j = cols; j < nr; ++j) dst[j] = T(0);
    }
  }
}

// How a finished tile is written: C = alpha·tile (first depth block, beta 0), C = beta·C + alpha·tile
// (first block), or C += alpha·tile (later blocks).
enum class Store { assign, scale_add, accumulate };

// C tile (rows × cols of C at c) ⊕= alpha · Σ_p a[:, p] b[p][:] over the packed B panel and A,
// packed or (direct_a: full tiles of a row-major A) read in place.
template <typename T, bool direct_a>
void micro_kernel(int64_t kc, const T* a, int64_t lda, const T* b, T* c, int64_t ldc, int64_t rows, int64_t cols,
                  T alpha, T beta, Store mode) {
  using V = Zmm<T>;
  constexpr int64_t nr = NR<T>;
  typename V::reg acc[MR][2];
  for (int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = V::zero();
  for (int64_t p = 0; p < kc; ++p) {
    typename V::reg b0 = V::load(b + p * nr), b1 = V::load(b + p * nr + V::lanes);
#pragma GCC unroll 8
    for (int64_t i = 0; i < MR; ++i) {
      // A packed as [kc][MR], or (direct) read in place from rows lda apart.
      typename V::reg ai = V::broadcast(direct_a ? a + i * lda + p : a + p * MR + i);
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
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc, bool parallel) {
  constexpr int64_t nr = NR<T>;
  thread_local std::vector<T> packed_b, packed_a;
  packed_b.resize(static_cast<size_t>(KC * (NC + nr)));
  packed_a.resize(static_cast<size_t>(KC * (MCHUNK + MR)));
  T* pa = packed_a.data();
  T* pb = packed_b.data();
  auto for_range = [parallel](int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (parallel)
      parallel_for(count, grain, fn);
    else
      fn(0, count);
  };
  for (int64_t j0 = 0; j0 < n; j0 += NC) {
    int64_t nc = std::min(NC, n - j0);
    // Depth blocks of equal size (at most KC): 784 = 4 × 196 rather than 3 × 256 + 16.
    const int64_t kc_even = (k + (k + KC - 1) / KC - 1) / ((k + KC - 1) / KC);
    for (int64_t k0 = 0; k0 < k; k0 += kc_even) {
      int64_t kc = std::min(kc_even, k - k0);
      Store mode = k0 > 0 || beta == T(1) ? Store::accumulate : beta == T(0) ? Store::assign : Store::scale_add;
      int64_t b_panels = (nc + nr - 1) / nr;
      for_range(b_panels, 8, [&](int64_t p0, int64_t p1) {
        pack_b(trans_b, b, ldb, k0, kc, j0 + p0 * nr, std::min(nc, p1 * nr) - p0 * nr, pb + p0 * kc * nr);
      });
      for (int64_t m0 = 0; m0 < m; m0 += MCHUNK) {
        int64_t mchunk = std::min(MCHUNK, m - m0);
        int64_t a_panels = (mchunk + MR - 1) / MR;
        // A row-major A needs no packing: the micro-kernel broadcasts from its rows, which stream
        // through the prefetchers. Only a last, partial tile is packed (its missing rows as zeros).
        for_range(a_panels, 8, [&](int64_t p0, int64_t p1) {
          for (int64_t q = p0; q < p1; ++q) {
            int64_t rows = std::min(MR, mchunk - q * MR);
            if (!trans_a && rows == MR) continue;
            pack_a(trans_a, a, lda, m0 + q * MR, rows, k0, kc, pa + q * MR * kc);
          }
        });
        // Tasks of MC rows × NB columns of C: the grid depends on the sizes only, and each tile of C
        // is computed the same way by whichever thread runs it. Within a task one B panel stays in
        // L1 while the A panels stream from L2.
        int64_t row_blocks = (mchunk + MC - 1) / MC, col_blocks = (nc + NB - 1) / NB;
        for_range(row_blocks * col_blocks, 1, [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            int64_t i0 = (t / col_blocks) * MC, jb = (t % col_blocks) * NB;
            for (int64_t jp = jb; jp < std::min(nc, jb + NB); jp += nr)
              for (int64_t ip = i0; ip < std::min(mchunk, i0 + MC); ip += MR) {
                int64_t rows = std::min(MR, mchunk - ip), cols = std::min(nr, nc - jp);
                const T* bp = pb + (jp / nr) * kc * nr;
                T* cp = c + (m0 + ip) * ldc + j0 + jp;
                if (!trans_a && rows == MR)
                  micro_kernel<T, true>(kc, a + (m0 + ip) * lda + k0, lda, bp, cp, ldc, rows, cols, alpha, beta, mode);
                else
                  micro_kernel<T, false>(kc, pa + ip * kc, 0, bp, cp, ldc, rows, cols, alpha, beta, mode);
              }
          }
        });
      }
    }
  }
}

#else  // no AVX-512: Eigen

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstMap = Eigen::Map<const RowMajor<T>, 0, Eigen::OuterStride<> >;
template <typename T>
using Map = Eigen::Map<RowMajor<T>, 0, Eigen::OuterStride<> >;

template <typename T, typename A, typename B>
void product(Map<T>& c, const A& a, const B& b, T alpha, T beta) {
  if (beta == T(0)) {
    c.noalias() = alpha * (a * b);
  } else {
    if (beta != T(1)) c *= beta;
    c.noalias() += alpha * (a * b);
  }
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc, bool parallel) {
  if (parallel && 2 * m * n * k >= (8 << 20)) {
    // Eigen's own threading depends on the thread count: split C into fixed 64-row blocks instead.
    parallel_for(m, 64, [&](int64_t i0, int64_t i1) {
      gemm_impl<T>(trans_a, trans_b, i1 - i0, n, k, alpha, trans_a ? a + i0 : a + i0 * lda, lda, b, ldb, beta,
                   c + i0 * ldc, ldc, false);
    });
    return;
  }
  Map<T> cm(c, m, n, Eigen::OuterStride<>(ldc));
  ConstMap<T> am(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  ConstMap<T> bm(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b)
    product<T>(cm, am, bm, alpha, beta);
  else if (trans_a && !trans_b)
    product<T>(cm, am.transpose(), bm, alpha, beta);
  else if (!trans_a && trans_b)
    product<T>(cm, am, bm.transpose(), alpha, beta);
  else
    product<T>(cm, am.transpose(), bm.transpose(), alpha, beta);
}

#endif

}  // namespace

template <typename T>
void gemm_dispatch(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc, bool parallel) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  if (m == 1 && n == 1) {
    // A dot product (dot, vector·vector): the packed kernel would pad its one column to a full panel
    // and run about 100× slower than this loop. 16 partial sums in a fixed order vectorize and keep
    // the result the same for every thread count.
    const int64_t step_a = trans_a ? lda : 1, step_b = trans_b ? 1 : ldb;
    T lane[16] = {};
    int64_t p = 0;
    if (step_a == 1 && step_b == 1)
      for (; p + 16 <= k; p += 16)
        for (int j = 0; j < 16; ++j) lane[j] += a[p + j] * b[p + j];
    T tail = 0;
    for (; p < k; ++p) tail += a[p * step_a] * b[p * step_b];
    for (int width = 8; width >= 1; width /= 2)
      for (int j = 0; j < width; ++j) lane[j] += lane[j + width];
    const T sum = lane[0] + tail;
    c[0] = beta == T(0) ? alpha * sum : alpha * sum + beta * c[0];
    return;
  }
  gemm_impl<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parallel);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm_dispatch(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false);
}

template <typename T>
void gemm_parallel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                   const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm_dispatch(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);
template void gemm_parallel<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                   int64_t, float, float*, int64_t);
template void gemm_parallel<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                    const double*, int64_t, double, double*, int64_t);

namespace {

// One row dst[0..n) = scale · row[0..n). With AVX-512 and whole cache lines, non-temporal stores:
// the result is far larger than the caches and is not read back soon, and streaming stores skip
// reading each destination line first (about 1.5× less memory traffic than plain stores).
template <typename T>
void scaled_row(T scale, const T* row, T* dst, int64_t n, bool stream) {
#ifdef __AVX512F__
  if constexpr (std::is_same_v<T, float>) {
    if (stream) {
      const __m512 s = _mm512_set1_ps(scale);
      for (int64_t j = 0; j < n; j += 16) _mm512_stream_ps(dst + j, _mm512_mul_ps(s, _mm512_loadu_ps(row + j)));
      return;
    }
  }
#endif
  (void)stream;
  for (int64_t j = 0; j < n; ++j) dst[j] = scale * row[j];
}

template <typename T>
void batched_outer_impl(const Tensor& a, const Tensor& c, const Tensor& out) {
  const int64_t batch = a.size(0), m = a.size(1), n = c.size(1);
  const T* pa = a.data<T>();
  const T* pc = c.data<T>();
  T* po = out.data<T>();
  const bool stream = (n * sizeof(T)) % 64 == 0 && reinterpret_cast<uintptr_t>(po) % 64 == 0;
  parallel_for(batch * m, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, n)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) scaled_row(pa[r], pc + (r / m) * n, po + r * n, n, stream);
#ifdef __AVX512F__
                 if (stream) _mm_sfence();  // streaming stores are weakly ordered: publish them before returning
#endif
               });
}

}  // namespace

void batched_outer(const Tensor& a, const Tensor& c, const Tensor& out) {
  Tensor ad = dense(a), cd = dense(c);
  PLATEAU_DISPATCH_FLOATING(a.dtype(), "batched_outer", batched_outer_impl<scalar_t>(ad, cd, out));
}

}  // namespace plateau::cpu
