#pragma once
// The CUDA kernels behind core/backend/kernels.h, with the CPU reference's contracts (see the
// backend/cpu headers for each one's exact semantics). Declared here without CUDA headers; defined
// only in builds with CUDA (PLATEAU_CUDA), and called only for tensors on a CUDA device.
#include <cstdint>
#include <vector>

#include "core/backend/kernel_types.h"
#include "core/tensor.h"

namespace plateau::cuda {

// Same-device copy with broadcasting and dtype conversion; fill.
void copy(const Tensor& src, const Tensor& dst);
void fill(const Tensor& dst, double value);

void unary(kernels::UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1);
void binary(kernels::BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha);
void compare(kernels::CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
void isfinite(const Tensor& x, const Tensor& out);

void sum(const Tensor& x, const std::vector<bool>& reduced, const Tensor& out);
void arg_extreme(const Tensor& x, int64_t dim, bool largest, const Tensor& out);
void topk_indices(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out);
void softmax(const Tensor& x, const Tensor& out, int64_t dim, bool log);

kernels::BadIndex find_out_of_range(const Tensor& index, int64_t size);
void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source);
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
void masked_fill(const Tensor& out, const Tensor& mask, double value);
void one_hot(const Tensor& indices, const Tensor& out);

// cuBLAS; see kernels::gemm_batched (row-major operands, device pointers).
void gemm_batched(DType dtype, int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                  int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, void* c, int64_t ldc,
                  int64_t stride_c, int64_t batches);
void batched_outer(const Tensor& a, const Tensor& c, const Tensor& out);

// cuDNN.
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& out, const kernels::ConvGeometry& g);
void conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x,
                       const kernels::ConvGeometry& g);
void conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const kernels::ConvGeometry& g);
void conv2d_weight_grad_per_example(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                    const kernels::ConvGeometry& g);
void conv2d_weight_grad_sq_norms(const Tensor& x, const Tensor& grad_out, const Tensor& sq,
                                 const kernels::ConvGeometry& g);
void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const kernels::PoolGeometry& g);

// Batch norm in training mode (cuDNN): y, the batch mean and 1/sqrt(var + eps) per channel (f32 for
// f32 x, f64 for f64), and the running statistics (when defined) updated in place with `momentum`.
// weight and bias may be undefined (no affine). All outputs are contiguous and allocated by the caller.
void batch_norm_train_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                              const Tensor& running_var, double momentum, double eps, const Tensor& y,
                              const Tensor& save_mean, const Tensor& save_invstd);
// dx, dweight and dbias (all three written) from the forward's saved mean and inverse std.
void batch_norm_train_backward(const Tensor& x, const Tensor& grad_y, const Tensor& weight, const Tensor& save_mean,
                               const Tensor& save_invstd, double eps, const Tensor& grad_x, const Tensor& grad_weight,
                               const Tensor& grad_bias);

// Philox draws: element i of out (contiguous) from block `first + i` of the (seed, stream) Philox
// stream, turned into a value exactly as core/ops/random.cpp does on the CPU, so both devices draw
// the same numbers. `probs` (bernoulli_tensor only) is a contiguous f64 tensor on out's device.
enum class Draw : uint8_t { uniform, normal, bernoulli, bernoulli_tensor, randint };
struct DrawParams {
  uint64_t seed = 0, stream = 0, first = 0;
  double a = 0, b = 0;  // uniform: low, high; normal: mean, std; bernoulli: p
  int64_t low = 0;      // randint: low + (64 bits mod range)
  uint64_t range = 1;
};
void random_draw(Draw kind, const DrawParams& params, const Tensor& out, const Tensor& probs = {});

}  // namespace plateau::cuda
