// Max pooling: the maximum of each window and where it is. The op (core/ops/pool.cpp) records the
// indices, so its gradient is a scatter-add and its second derivative a gather.
#include "core/backend/cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

// Output columns ow whose window column ow * stride + offset lies in [0, size): [first, last).
void valid_columns(int64_t out_size, int64_t stride, int64_t offset, int64_t size, int64_t& first, int64_t& last) {
  first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  last = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  first = std::min(first, out_size);
  last = std::clamp(last, first, out_size);
}

// Row maxima over the window columns: hv[ow] = max_j row[ow·S + j − pad] (first j wins ties, the
// last NaN wins), hj[ow] = that j (−1 where every element is −inf or padding). S is the stride when
// known at compile time (the strided loads then vectorize), 0 to read it from `stride`.
template <typename T, int64_t S>
void row_max(const T* __restrict row, T* __restrict hv, int32_t* __restrict hj, const PoolGeometry& g,
             const int64_t* first, const int64_t* last) {
  const int64_t s = S ? S : g.stride_w;
  std::fill(hv, hv + g.out_w, -std::numeric_limits<T>::infinity());
  std::fill(hj, hj + g.out_w, -1);
  for (int64_t j = 0; j < g.kernel_w; ++j) {
    const T* r = row + j - g.pad_w;
    const int32_t jj = static_cast<int32_t>(j);
    for (int64_t ow = first[j]; ow < last[j]; ++ow) {
      const T v = r[ow * s];
      const bool take = (v > hv[ow]) | (v != v);
      hv[ow] = take ? v : hv[ow];
      hj[ow] = take ? jj : hj[ow];
    }
  }
}

// Separable: the maxima of each input row over the window columns first, then of those over the
// window rows. Taking the first row of the first column on ties (and the last NaN) gives the same
// position as a row-major scan of the window, as torch's kernel does.
template <typename T> void max_pool_impl(const T* x, T* values, int64_t* idx, const PoolGeometry& g) {
  const int64_t plane = g.height * g.width, out_plane = g.out_h * g.out_w, ow_n = g.out_w;
  std::vector<int64_t> first(g.kernel_w), last(g.kernel_w);
  for (int64_t j = 0; j < g.kernel_w; ++j) valid_columns(ow_n, g.stride_w, j - g.pad_w, g.width, first[j], last[j]);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    std::vector<T> hv(g.height * ow_n), best(ow_n);
    std::vector<int32_t> hj(g.height * ow_n), rel(ow_n);
    T* __restrict bp = best.data();
    int32_t* __restrict rp = rel.data();
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * plane;
      for (int64_t h = 0; h < g.height; ++h) {
        const T* row = xp + h * g.width;
        T* v = hv.data() + h * ow_n;
        int32_t* j = hj.data() + h * ow_n;
        if (g.stride_w == 1) row_max<T, 1>(row, v, j, g, first.data(), last.data());
        else if (g.stride_w == 2) row_max<T, 2>(row, v, j, g, first.data(), last.data());
        else row_max<T, 0>(row, v, j, g, first.data(), last.data());
      }
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t top = oh * g.stride_h - g.pad_h;  // the window's first row (maybe padding)
        std::fill(bp, bp + ow_n, -std::numeric_limits<T>::infinity());
        std::fill(rp, rp + ow_n, -1);  // -1: nothing beat -inf
        for (int64_t a = std::max<int64_t>(0, -top); a < g.kernel_h && top + a < g.height; ++a) {
          const T* __restrict v = hv.data() + (top + a) * ow_n;
          const int32_t* __restrict j = hj.data() + (top + a) * ow_n;
          const int32_t row_offset = static_cast<int32_t>(a * g.width);
          for (int64_t ow = 0; ow < ow_n; ++ow) {
            const bool take = (v[ow] > bp[ow]) | (v[ow] != v[ow]);
            bp[ow] = take ? v[ow] : bp[ow];
            rp[ow] = take ? row_offset + j[ow] : rp[ow];
          }
        }
        T* vp = values + p * out_plane + oh * ow_n;
        int64_t* ip = idx + p * out_plane + oh * ow_n;
        const int64_t h0 = std::max<int64_t>(0, top);
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const int64_t left = ow * g.stride_w - g.pad_w;
          // A window of -inf only: its first valid position, as torch.
          ip[ow] = rp[ow] >= 0 ? top * g.width + left + rp[ow] : h0 * g.width + std::max<int64_t>(0, left);
          vp[ow] = bp[ow];
        }
      }
    }
  });
}

}  // namespace

void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const PoolGeometry& g) {
  Tensor xc = x;
  if (!x.is_contiguous()) {
    xc = empty(x.shape(), x.dtype());
    copy(x, xc);
  }
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "max_pool2d",
                            max_pool_impl<scalar_t>(xc.data<scalar_t>(), values.data<scalar_t>(),
                                                    indices.data<int64_t>(), g));
}

}  // namespace plateau::cpu
