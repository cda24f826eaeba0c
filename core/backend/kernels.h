#pragma once
// The backend interface (internal to core): every kernel an op calls, dispatched by the device of its
// tensors to the CPU reference (backend/cpu) or to CUDA (backend/cuda). All tensors of one call must
// be on one device; only copy() crosses devices. Shapes and dtypes are checked by the ops first.
#include <cstdint>
#include <vector>

#include "core/backend/kernel_types.h"
#include "core/tensor.h"

namespace plateau::kernels {

// dst = src (broadcast to dst's shape, converted to dst's dtype); src and dst may be on different devices.
void copy(const Tensor& src, const Tensor& dst);
void fill(const Tensor& dst, double value);
Tensor dense(const Tensor& x);  // x itself when contiguous, else a contiguous copy on x's device

void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0 = 0.0, double p1 = 0.0);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha = 1.0);
void compare(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
void isfinite(const Tensor& x, const Tensor& out);

void sum(const Tensor& x, const std::vector<bool>& reduced, const Tensor& out);
void arg_extreme(const Tensor& x, int64_t dim, bool largest, const Tensor& out);
void topk_indices(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out);
void softmax(const Tensor& x, const Tensor& out, int64_t dim, bool log);

BadIndex find_out_of_range(const Tensor& index, int64_t size);
void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source);
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
void masked_fill(const Tensor& out, const Tensor& mask, double value);
void one_hot(const Tensor& indices, const Tensor& out);

// Row-major C_i = op(A_i) · op(B_i) for i < batches, where op transposes when asked, A_i starts
// stride_a elements after A_{i-1} (0 broadcasts one matrix), and pointers are on `device`.
void gemm_batched(DType dtype, Device device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                  const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, void* c,
                  int64_t ldc, int64_t stride_c, int64_t batches);
void batched_outer(const Tensor& a, const Tensor& c, const Tensor& out);

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& out, const ConvGeometry& g);
void conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x, const ConvGeometry& g);
void conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const ConvGeometry& g);
void conv2d_weight_grad_per_example(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                    const ConvGeometry& g);
void conv2d_weight_grad_sq_norms(const Tensor& x, const Tensor& grad_out, const Tensor& sq, const ConvGeometry& g);
void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const PoolGeometry& g);

// Batch norm in training mode as one fused kernel, where the device has one (CUDA: cuDNN); elsewhere
// the op runs its composite. See core/backend/cuda/kernels.h for the contract.
bool has_fused_batch_norm(const Tensor& x);
void batch_norm_train_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                              const Tensor& running_var, double momentum, double eps, const Tensor& y,
                              const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_train_backward(const Tensor& x, const Tensor& grad_y, const Tensor& weight, const Tensor& save_mean,
                               const Tensor& save_invstd, double eps, const Tensor& grad_x, const Tensor& grad_weight,
                               const Tensor& grad_bias);

}  // namespace plateau::kernels
