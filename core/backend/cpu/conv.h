#pragma once
// Convolution kernels (internal). Each image (and group) is turned into a column matrix by im2col,
// one row per (channel, kernel row, kernel column) and one column per output pixel, so that the
// convolution is a GEMM: out[n, g] = W_g · col(x[n, g]). The input gradient is the adjoint
// (col = W_gᵀ · grad, then col2im sums the columns back onto the pixels they came from) and the
// weight gradient sums grad[n, g] · col(x[n, g])ᵀ over images.
#include <cstdint>

#include "core/backend/kernel_types.h"
#include "core/tensor.h"

namespace plateau::cpu {

using kernels::ConvGeometry;

// out [N, O, OH, OW] (contiguous, overwritten) = conv2d(x, weight). Inputs may have any strides.
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& out, const ConvGeometry& g);
// grad_x [N, C, H, W] (contiguous, overwritten) = the adjoint of conv2d(·, weight) applied to grad_out.
void conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x, const ConvGeometry& g);
// grad_w [O, C/groups, kH, kW] (contiguous, overwritten) = Σ_n grad_out[n] · col(x[n])ᵀ. Images are
// summed in fixed-size chunks whose partial sums are added in chunk order: the result does not
// depend on the thread count.
void conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const ConvGeometry& g);
// grad_w [N, O, C/groups, kH, kW] (contiguous, overwritten): each image's own grad_out[n] · col(x[n])ᵀ.
void conv2d_weight_grad_per_example(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                    const ConvGeometry& g);
// sq [N] (contiguous, overwritten): ‖grad_out[n] · col(x[n])ᵀ‖² per image, in whichever form is
// cheaper for the shapes: forming each image's gradient (og·K·P products per group) or the Gram form
// Σ_pq (colᵀcol)_pq (gᵀg)_pq, which needs P²·(K + og) and never forms the gradient.
void conv2d_weight_grad_sq_norms(const Tensor& x, const Tensor& grad_out, const Tensor& sq, const ConvGeometry& g);

}  // namespace plateau::cpu
