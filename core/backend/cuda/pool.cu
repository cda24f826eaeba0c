// Max pooling on the device: the maximum of each window and where it is. Our own kernel rather than
// cuDNN's, which gives no indices: the op's backward scatters the gradient through them.
#include <limits>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/backend/kernels.h"
#include "core/ops/factory.h"

namespace plateau::cuda {

namespace {

using kernels::PoolGeometry;

// x read as planes of [H, W]: plane p is image p / channels, channel p % channels.
struct PlaneLayout {
  int64_t channels, s_n, s_c, s_h, s_w;
};

// values[p, oh, ow] = max of plane p over the window at (oh·sh − ph, ow·sw − pw), scanned in
// row-major order: a strictly larger value or a NaN takes the place (so ties keep the first
// position and the last NaN wins); padding is never read. indices = that position ih·W + iw, or the
// window's first in-plane position when nothing beat −inf (as the CPU kernel and torch).
template <typename T>
__global__ void max_pool_kernel(const T* x, PlaneLayout l, PoolGeometry g, T* values, int64_t* indices, int64_t total) {
  PLATEAU_GRID_STRIDE_LOOP(idx, total) {
    const int64_t ow = idx % g.out_w, rest = idx / g.out_w;
    const int64_t oh = rest % g.out_h, p = rest / g.out_h;
    const T* plane = x + (p / l.channels) * l.s_n + (p % l.channels) * l.s_c;
    const int64_t top = oh * g.stride_h - g.pad_h, left = ow * g.stride_w - g.pad_w;
    const int64_t h0 = top > 0 ? top : 0, w0 = left > 0 ? left : 0;
    const int64_t h1 = top + g.kernel_h < g.height ? top + g.kernel_h : g.height;
    const int64_t w1 = left + g.kernel_w < g.width ? left + g.kernel_w : g.width;
    T best = -std::numeric_limits<T>::infinity();
    int64_t at = -1;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) {
        const T v = plane[ih * l.s_h + iw * l.s_w];
        if (v > best || v != v) {
          best = v;
          at = ih * g.width + iw;
        }
      }
    values[idx] = best;
    indices[idx] = at >= 0 ? at : h0 * g.width + w0;
  }
}

}  // namespace

void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const PoolGeometry& g) {
  const int dev = values.device().index;
  set_device(dev);
  const int64_t total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    throw std::invalid_argument(std::string("plateau: max_pool2d needs a floating tensor, got ") +
                                dtype_name(x.dtype()));
  if (!values.is_contiguous() || !indices.is_contiguous())
    throw std::logic_error("plateau: max_pool2d: values and indices must be contiguous (a bug in the caller)");
  // A [N, C, H, W] view is read through its strides; anything else as a dense [planes, H, W].
  Tensor src = x;
  PlaneLayout l{1, g.height * g.width, 0, g.width, 1};
  if (x.dim() == 4) {
    l = {x.size(1), x.strides()[0], x.strides()[1], x.strides()[2], x.strides()[3]};
  } else {
    src = kernels::dense(x);
  }
  if (x.dtype() == DType::f64)
    max_pool_kernel<double><<<grid_for(total), block_threads, 0, stream(dev)>>>(
        ptr<double>(src), l, g, ptr<double>(values), ptr<int64_t>(indices), total);
  else
    max_pool_kernel<float><<<grid_for(total), block_threads, 0, stream(dev)>>>(
        ptr<float>(src), l, g, ptr<float>(values), ptr<int64_t>(indices), total);
  PLATEAU_LAUNCH_CHECK("max_pool2d");
}

}  // namespace plateau::cuda
