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
  const int64_t s = S ? S : g.stride_w, kernel_w = g.kernel_w, pad_w = g.pad_w;
  std::fill(hv, hv + g.out_w, -std::numeric_limits<T>::infinity());
  std::fill(hj, hj + g.out_w, -1);
  for (int64_t j = 0; j < kernel_w; ++j) {
    const T* r = row + j - pad_w;
    const int32_t jj = static_cast<int32_t>(j);
    for (int64_t ow = first[j]; ow < last[j]; ++ow) {
      const T v = r[ow * s];
      const bool take = (v > hv[ow]) | (v != v);
      hv[ow] = take ? v : hv[ow];
      hj[ow] = take ? jj : hj[ow];
    }
  }
}

// The common 2×2 window with stride 2 and no padding, one output row per loop: four loads per
// output, updated in row-major order with the same first-maximum / last-NaN rule.
template <typename T>
void max_pool_2x2_impl(const T* x, T* values, int64_t* idx, const PoolGeometry& g) {
  const int64_t plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    // Sizes in locals: stores through the output pointers could otherwise alias them.
    const int64_t w = g.width, out_h = g.out_h, out_w = g.out_w;
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t oh = 0; oh < out_h; ++oh) {
        const T* __restrict r0 = x + p * plane + 2 * oh * w;
        const T* __restrict r1 = r0 + w;
        T* __restrict vp = values + p * out_plane + oh * out_w;
        int64_t* __restrict ip = idx + p * out_plane + oh * out_w;
        const int64_t base = 2 * oh * w;
        for (int64_t ow = 0; ow < out_w; ++ow) {
          T best = r0[2 * ow];
          int64_t at = 0;
          const T v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
          bool take = (v1 > best) | (v1 != v1);
          best = take ? v1 : best;
          at = take ? 1 : at;
          take = (v2 > best) | (v2 != v2);
          best = take ? v2 : best;
          at = take ? w : at;
          take = (v3 > best) | (v3 != v3);
          best = take ? v3 : best;
          at = take ? w + 1 : at;
          vp[ow] = best;
          ip[ow] = base + 2 * ow + at;
        }
      }
  });
}

// Separable: the maxima of each input row over the window columns first, then of those over the
// window rows. Taking the first row of the first column on ties (and the last NaN) gives the same
// position as a row-major scan of the window, as torch's kernel does.
template <typename T>
void max_pool_impl(const T* x, T* values, int64_t* idx, const PoolGeometry& g) {
  const int64_t plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  std::vector<int64_t> first(g.kernel_w), last(g.kernel_w);
  for (int64_t j = 0; j < g.kernel_w; ++j) valid_columns(g.out_w, g.stride_w, j - g.pad_w, g.width, first[j], last[j]);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    // Sizes in locals: stores through the output pointers could otherwise alias them.
    const int64_t height = g.height, width = g.width, out_h = g.out_h, out_w = g.out_w;
    const int64_t kernel_h = g.kernel_h, stride_h = g.stride_h, stride_w = g.stride_w, pad_h = g.pad_h, pad_w = g.pad_w;
    std::vector<T> hv(height * out_w), best(out_w);
    std::vector<int32_t> hj(height * out_w), rel(out_w);
    T* __restrict bp = best.data();
    int32_t* __restrict rp = rel.data();
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * plane;
      for (int64_t h = 0; h < height; ++h) {
        const T* row = xp + h * width;
        T* v = hv.data() + h * out_w;
        int32_t* j = hj.data() + h * out_w;
        if (stride_w == 1)
          row_max<T, 1>(row, v, j, g, first.data(), last.data());
        else if (stride_w == 2)
          row_max<T, 2>(row, v, j, g, first.data(), last.data());
        else
          row_max<T, 0>(row, v, j, g, first.data(), last.data());
      }
      for (int64_t oh = 0; oh < out_h; ++oh) {
        const int64_t top = oh * stride_h - pad_h;  // the window's first row (maybe padding)
        std::fill(bp, bp + out_w, -std::numeric_limits<T>::infinity());
        std::fill(rp, rp + out_w, -1);  // -1: nothing beat -inf
        for (int64_t a = std::max<int64_t>(0, -top); a < kernel_h && top + a < height; ++a) {
          const T* __restrict v = hv.data() + (top + a) * out_w;
          const int32_t* __restrict j = hj.data() + (top + a) * out_w;
          const int32_t row_offset = static_cast<int32_t>(a * width);
          for (int64_t ow = 0; ow < out_w; ++ow) {
            const bool take = (v[ow] > bp[ow]) | (v[ow] != v[ow]);
            bp[ow] = take ? v[ow] : bp[ow];
            rp[ow] = take ? row_offset + j[ow] : rp[ow];
          }
        }
        T* __restrict vp = values + p * out_plane + oh * out_w;
        int64_t* __restrict ip = idx + p * out_plane + oh * out_w;
        const int64_t h0 = std::max<int64_t>(0, top);
        for (int64_t ow = 0; ow < out_w; ++ow) {
          const int64_t left = ow * stride_w - pad_w;
          // A window of -inf only: its first valid position, as torch.
          ip[ow] = rp[ow] >= 0 ? top * width + left + rp[ow] : h0 * width + std::max<int64_t>(0, left);
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
  const bool two_by_two =
      g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0;
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "max_pool2d", {
    if (two_by_two)
      max_pool_2x2_impl<scalar_t>(xc.data<scalar_t>(), values.data<scalar_t>(), indices.data<int64_t>(), g);
    else
      max_pool_impl<scalar_t>(xc.data<scalar_t>(), values.data<scalar_t>(), indices.data<int64_t>(), g);
  });
}

}  // namespace plateau::cpu
