// Convolution by im2col + GEMM (see conv.h). Work is split over images in chunks whose size
// depends on the problem only; every image's result is computed the same way whatever thread runs
// it, and the weight gradient's per-chunk partial sums are added in chunk order.
#include "core/backend/cpu/conv.h"

#include <algorithm>
#include <vector>

#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/gemm.h"
#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

// A per-thread buffer reused across calls, so that a training step does not page-fault fresh
// column matrices for every image. `slot` separates buffers used at the same time.
template <typename T>
T* scratch(size_t n, int slot) {
  static thread_local std::vector<T> buffers[2];
  std::vector<T>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// Output columns ow whose input column ow * stride + offset lies in [0, size): [first, last).
struct Range {
  int64_t first, last;
};
Range valid_range(int64_t out_size, int64_t stride, int64_t offset, int64_t size) {
  int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t last = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  first = std::min(first, out_size);
  last = std::clamp(last, first, out_size);
  return {first, last};
}

// True when the column matrix is the input itself: a 1×1 kernel with stride 1 and no padding.
bool is_pointwise(const ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

// col [cg·kH·kW, OH·OW] from the cg channels of one image at x [cg, H, W]; padding reads as zero.
template <typename T>
void im2col(const T* x, int64_t cg, const ConvGeometry& g, T* col) {
  const int64_t plane = g.height * g.width, cols = g.out_h * g.out_w;
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t ki = 0; ki < g.kernel_h; ++ki)
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * cols;
        const int64_t col_offset = kj * g.dilation_w - g.pad_w;  // iw = ow * stride_w + col_offset
        const Range r = valid_range(g.out_w, g.stride_w, col_offset, g.width);
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          T* dst = row + oh * g.out_w;
          const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
          if (ih < 0 || ih >= g.height) {
            std::fill(dst, dst + g.out_w, T(0));
            continue;
          }
          const T* src = x + c * plane + ih * g.width + col_offset;
          std::fill(dst, dst + r.first, T(0));
          if (g.stride_w == 1) {
            // A loop, not memcpy: rows are short (tens of elements) and a call per row costs more.
            for (int64_t ow = r.first; ow < r.last; ++ow) dst[ow] = src[ow];
          } else {
            for (int64_t ow = r.first; ow < r.last; ++ow) dst[ow] = src[ow * g.stride_w];
          }
          std::fill(dst + r.last, dst + g.out_w, T(0));
        }
      }
}

// The adjoint of im2col: x [cg, H, W] += each column entry at the pixel it was read from (rows in
// a fixed order, so overlapping windows are summed the same way every time).
template <typename T>
void col2im(const T* col, int64_t cg, const ConvGeometry& g, T* x) {
  const int64_t plane = g.height * g.width, cols = g.out_h * g.out_w;
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t ki = 0; ki < g.kernel_h; ++ki)
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * cols;
        const int64_t col_offset = kj * g.dilation_w - g.pad_w;
        const Range r = valid_range(g.out_w, g.stride_w, col_offset, g.width);
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
          if (ih < 0 || ih >= g.height) continue;
          const T* src = row + oh * g.out_w;
          T* dst = x + c * plane + ih * g.width + col_offset;
          if (g.stride_w == 1) {
            for (int64_t ow = r.first; ow < r.last; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = r.first; ow < r.last; ++ow) dst[ow * g.stride_w] += src[ow];
          }
        }
      }
}

// Images per chunk, from the problem size only: enough work per chunk (≈1 MFLOP) to pay for the
// hand-off, and at most 16 chunks (which bounds the weight gradient's partial sums).
int64_t images_per_chunk(int64_t batch, int64_t flops_per_image) {
  int64_t grain =
      std::max<int64_t>(1, ((int64_t{1} << 20) + flops_per_image - 1) / std::max<int64_t>(1, flops_per_image));
  grain = std::max(grain, (batch + 15) / 16);
  return std::min(grain, std::max<int64_t>(1, batch));
}

struct Sizes {
  int64_t cg, og, k, p;  // channels and outputs per group, rows of col (cg·kH·kW), output pixels
  explicit Sizes(const ConvGeometry& g)
      : cg(g.channels / g.groups),
        og(g.out_channels / g.groups),
        k(cg * g.kernel_h * g.kernel_w),
        p(g.out_h * g.out_w) {}
};

template <typename T>
void forward_impl(const Tensor& x, const Tensor& weight, const Tensor& out, const ConvGeometry& g) {
  const Sizes s(g);
  const bool pointwise = is_pointwise(g);
  const T* xp = x.data<T>();
  const T* wp = weight.data<T>();
  T* op = out.data<T>();
  const int64_t image = g.channels * g.height * g.width;
  // With a deep enough kernel (K ≥ 64 products per output), the GEMM runs transposed, outᵀ [P, og] =
  // colᵀ · W_gᵀ: its long side is then the pixels, and both operands are read in their stored
  // layout (col as [K, P], W_gᵀ made once here), which packs fastest; the transpose back costs
  // about 1/K of the GEMM. A shallow kernel (the first layer) multiplies directly.
  const bool transposed = s.k >= 64;
  std::vector<T> wt(transposed ? g.out_channels * s.k : 0);
  if (transposed)
    for (int64_t grp = 0; grp < g.groups; ++grp)
      for (int64_t o = 0; o < s.og; ++o)
        for (int64_t kk = 0; kk < s.k; ++kk) wt[(grp * s.k + kk) * s.og + o] = wp[(grp * s.og + o) * s.k + kk];
  parallel_for(g.batch, images_per_chunk(g.batch, 2 * g.out_channels * s.k * s.p), [&](int64_t b0, int64_t b1) {
    T* col = pointwise ? nullptr : scratch<T>(s.k * s.p, 0);
    T* out_t = transposed ? scratch<T>(s.p * s.og, 1) : nullptr;
    for (int64_t n = b0; n < b1; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = xp + n * image + grp * s.cg * g.height * g.width;
        if (!pointwise) im2col(xg, s.cg, g, col);
        const T* cols = pointwise ? xg : col;
        T* dst = op + (n * g.out_channels + grp * s.og) * s.p;
        if (!transposed) {
          // out[n, g] [og, P] = W_g [og, K] · col [K, P]
          gemm_parallel<T>(false, false, s.og, s.p, s.k, T(1), wp + grp * s.og * s.k, s.k, cols, s.p, T(0), dst, s.p);
          continue;
        }
        gemm_parallel<T>(true, false, s.p, s.og, s.k, T(1), cols, s.p, wt.data() + grp * s.k * s.og, s.og, T(0), out_t,
                         s.og);
        for (int64_t o = 0; o < s.og; ++o)
          for (int64_t q = 0; q < s.p; ++q) dst[o * s.p + q] = out_t[q * s.og + o];
      }
  });
}

template <typename T>
void input_grad_impl(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x, const ConvGeometry& g) {
  const Sizes s(g);
  const bool pointwise = is_pointwise(g);
  const T* gp = grad_out.data<T>();
  const T* wp = weight.data<T>();
  T* xp = grad_x.data<T>();
  const int64_t image = g.channels * g.height * g.width;
  parallel_for(g.batch, images_per_chunk(g.batch, 2 * g.out_channels * s.k * s.p), [&](int64_t b0, int64_t b1) {
    T* col = pointwise ? nullptr : scratch<T>(s.k * s.p, 0);
    for (int64_t n = b0; n < b1; ++n) {
      T* xn = xp + n * image;
      if (!pointwise) std::fill(xn, xn + image, T(0));
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        T* xg = xn + grp * s.cg * g.height * g.width;
        // col [K, P] = W_gᵀ [K, og] · grad[n, g] [og, P]; W_g is stored [og, K].
        gemm_parallel<T>(true, false, s.k, s.p, s.og, T(1), wp + grp * s.og * s.k, s.k,
                         gp + (n * g.out_channels + grp * s.og) * s.p, s.p, T(0), pointwise ? xg : col, s.p);
        if (!pointwise) col2im(col, s.cg, g, xg);
      }
    }
  });
}

template <typename T>
void weight_grad_impl(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const ConvGeometry& g) {
  const Sizes s(g);
  const bool pointwise = is_pointwise(g);
  const T* xp = x.data<T>();
  const T* gp = grad_out.data<T>();
  T* wp = grad_w.data<T>();
  const int64_t image = g.channels * g.height * g.width, wsize = g.out_channels * s.k;
  if (g.batch == 0) {
    std::fill(wp, wp + wsize, T(0));
    return;
  }
  const int64_t grain = images_per_chunk(g.batch, 2 * g.out_channels * s.k * s.p);
  const int64_t chunks = (g.batch + grain - 1) / grain;
  // Per chunk and group, the transposed gradient dW_gᵀ [K, og]: the GEMM's rows are then the long
  // side K (a multiple of its register tile for 3×3 kernels) rather than the og output channels.
  T* partial = scratch<T>(chunks * wsize, 1);  // the calling thread's: reused, no page faults
  parallel_for(g.batch, grain, [&](int64_t b0, int64_t b1) {
    T* acc = partial + (b0 / grain) * wsize;
    T* col = pointwise ? nullptr : scratch<T>(s.k * s.p, 0);
    for (int64_t n = b0; n < b1; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = xp + n * image + grp * s.cg * g.height * g.width;
        if (!pointwise) im2col(xg, s.cg, g, col);
        // dW_gᵀ [K, og] (+)= col [K, P] · grad[n, g]ᵀ [P, og]; grad[n, g] is stored [og, P].
        gemm_parallel<T>(false, true, s.k, s.og, s.p, T(1), pointwise ? xg : col, s.p,
                         gp + (n * g.out_channels + grp * s.og) * s.p, s.p, n == b0 ? T(0) : T(1),
                         acc + grp * s.k * s.og, s.og);
      }
  });
  // Chunk order, element by element: the same sums for any thread count.
  for (int64_t c = 1; c < chunks; ++c) {
    const T* src = partial + c * wsize;
    for (int64_t i = 0; i < wsize; ++i) partial[i] += src[i];
  }
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t kk = 0; kk < s.k; ++kk)
      for (int64_t o = 0; o < s.og; ++o) wp[(grp * s.og + o) * s.k + kk] = partial[(grp * s.k + kk) * s.og + o];
}

template <typename T>
void weight_grad_per_example_impl(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                  const ConvGeometry& g) {
  const Sizes s(g);
  const bool pointwise = is_pointwise(g);
  const T* xp = x.data<T>();
  const T* gp = grad_out.data<T>();
  T* wp = grad_w.data<T>();
  const int64_t image = g.channels * g.height * g.width;
  parallel_for(g.batch, images_per_chunk(g.batch, 2 * g.out_channels * s.k * s.p), [&](int64_t b0, int64_t b1) {
    T* col = pointwise ? nullptr : scratch<T>(s.k * s.p, 0);
    for (int64_t n = b0; n < b1; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = xp + n * image + grp * s.cg * g.height * g.width;
        if (!pointwise) im2col(xg, s.cg, g, col);
        // dW[n, g] [og, K] = grad[n, g] [og, P] · colᵀ [P, K]
        gemm_parallel<T>(false, true, s.og, s.k, s.p, T(1), gp + (n * g.out_channels + grp * s.og) * s.p, s.p,
                         pointwise ? xg : col, s.p, T(0), wp + (n * g.out_channels + grp * s.og) * s.k, s.k);
      }
  });
}

template <typename T>
void weight_grad_sq_norms_impl(const Tensor& x, const Tensor& grad_out, const Tensor& sq, const ConvGeometry& g) {
  const Sizes s(g);
  const bool pointwise = is_pointwise(g);
  const bool gram = s.p * (s.k + s.og) < s.og * s.k;
  const T* xp = x.data<T>();
  const T* gp = grad_out.data<T>();
  T* out = sq.data<T>();
  const int64_t image = g.channels * g.height * g.width;
  parallel_for(g.batch, images_per_chunk(g.batch, 2 * g.out_channels * s.k * s.p), [&](int64_t b0, int64_t b1) {
    T* col = pointwise ? nullptr : scratch<T>(s.k * s.p, 0);
    T* work = scratch<T>(gram ? 2 * s.p * s.p : s.og * s.k, 1);
    for (int64_t n = b0; n < b1; ++n) {
      double total = 0;  // in double: f32 sums of many squares lose digits
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = xp + n * image + grp * s.cg * g.height * g.width;
        if (!pointwise) im2col(xg, s.cg, g, col);
        const T* cols = pointwise ? xg : col;
        const T* grad = gp + (n * g.out_channels + grp * s.og) * s.p;
        if (gram) {
          // ‖G·Cᵀ‖² = Σ_pq (CᵀC)_pq (GᵀG)_pq with C = col [K, P], G = grad [og, P].
          T* cc = work;
          T* gg = work + s.p * s.p;
          gemm_parallel<T>(true, false, s.p, s.p, s.k, T(1), cols, s.p, cols, s.p, T(0), cc, s.p);
          gemm_parallel<T>(true, false, s.p, s.p, s.og, T(1), grad, s.p, grad, s.p, T(0), gg, s.p);
          for (int64_t i = 0; i < s.p * s.p; ++i) total += double(cc[i]) * double(gg[i]);
        } else {
          gemm_parallel<T>(false, true, s.og, s.k, s.p, T(1), grad, s.p, cols, s.p, T(0), work, s.k);
          for (int64_t i = 0; i < s.og * s.k; ++i) total += double(work[i]) * double(work[i]);
        }
      }
      out[n] = static_cast<T>(total);
    }
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& out, const ConvGeometry& g) {
  Tensor xc = dense(x), wc = dense(weight);
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "conv2d", forward_impl<scalar_t>(xc, wc, out, g));
}

void conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x, const ConvGeometry& g) {
  Tensor gc = dense(grad_out), wc = dense(weight);
  PLATEAU_DISPATCH_FLOATING(grad_out.dtype(), "conv2d_input_grad", input_grad_impl<scalar_t>(gc, wc, grad_x, g));
}

void conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const ConvGeometry& g) {
  Tensor xc = dense(x), gc = dense(grad_out);
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "conv2d_weight_grad", weight_grad_impl<scalar_t>(xc, gc, grad_w, g));
}

void conv2d_weight_grad_per_example(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                    const ConvGeometry& g) {
  Tensor xc = dense(x), gc = dense(grad_out);
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "conv2d per-example weight gradient",
                            weight_grad_per_example_impl<scalar_t>(xc, gc, grad_w, g));
}

void conv2d_weight_grad_sq_norms(const Tensor& x, const Tensor& grad_out, const Tensor& sq, const ConvGeometry& g) {
  Tensor xc = dense(x), gc = dense(grad_out);
  PLATEAU_DISPATCH_FLOATING(x.dtype(), "conv2d per-example weight gradient norms",
                            weight_grad_sq_norms_impl<scalar_t>(xc, gc, sq, g));
}

}  // namespace plateau::cpu
