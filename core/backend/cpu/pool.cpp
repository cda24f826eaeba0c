// Max-pool argmax: one scan of each window. The values are then a gather at these indices (in
// core/ops/pool.cpp), so the gradient is a scatter-add and nothing here needs differentiating.
#include "core/backend/cpu/pool.h"

#include <algorithm>
#include <cmath>

#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

template <typename T> void max_indices_impl(const T* x, int64_t* idx, const PoolGeometry& g) {
  const int64_t plane = g.height * g.width, out_plane = g.out_h * g.out_w;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * plane;
      int64_t* ip = idx + p * out_plane;
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t h0 = std::max<int64_t>(0, oh * g.stride_h - g.pad_h);
        const int64_t h1 = std::min(g.height, oh * g.stride_h - g.pad_h + g.kernel_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t w0 = std::max<int64_t>(0, ow * g.stride_w - g.pad_w);
          const int64_t w1 = std::min(g.width, ow * g.stride_w - g.pad_w + g.kernel_w);
          int64_t best = h0 * g.width + w0;
          T best_value = xp[best];
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const T v = xp[h * g.width + w];
              if (v > best_value || (std::isnan(v) && !std::isnan(best_value))) {
                best_value = v;
                best = h * g.width + w;
              }
            }
          ip[oh * g.out_w + ow] = best;
        }
      }
    }
  });
}

}  // namespace

void max_pool2d_indices(const Tensor& x, const Tensor& indices, const PoolGeometry& g) {
  Tensor xc = x;
  if (!x.is_contiguous()) {
    xc = empty(x.shape(), x.dtype());
    copy(x, xc);
  }
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "max_pool2d", max_indices_impl<scalar_t>(xc.data<scalar_t>(),
                                                                                indices.data<int64_t>(), g));
}

}  // namespace plateau::cpu
