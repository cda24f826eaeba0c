// Dispatch by device: the CPU reference or the CUDA kernels. Tensors of one call must share a
// device (copy() alone crosses devices, through a dense staging buffer).
#include "core/backend/kernels.h"

#include <stdexcept>

#include "core/backend/cpu/conv.h"
#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/elementwise.h"
#include "core/backend/cpu/gemm.h"
#include "core/backend/cpu/index.h"
#include "core/backend/cpu/pool.h"
#include "core/backend/cpu/reduce.h"
#include "core/backend/cpu/softmax.h"
#include "core/backend/cuda/runtime.h"
#include "core/ops/factory.h"
#include "core/threads.h"
#if PLATEAU_CUDA
#include "core/backend/cuda/kernels.h"
#endif

namespace plateau::kernels {

namespace {

// True when the call runs on CUDA; throws when its tensors are on different devices.
bool on_cuda(const char* kernel, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!first) {
      first = t;
    } else if (t->device() != first->device()) {
      throw std::invalid_argument(std::string("plateau: ") + kernel + ": tensors are on different devices, " +
                                  first->device().str() + " and " + t->device().str() +
                                  "; move them to one device with .to(device) first");
    }
  }
  return first && first->device().is_cuda();
}

// Runs backend::call on the tensors' device; the CPU and CUDA kernels share each call's signature.
// Without CUDA no tensor can live on a device (Storage refuses), so only the CPU is reached.
#if PLATEAU_CUDA
#define PLATEAU_ON_DEVICE(kernel, call, ...) \
  if (on_cuda(kernel, {__VA_ARGS__})) {      \
    cuda::call;                              \
  } else {                                   \
    cpu::call;                               \
  }
#else
#define PLATEAU_ON_DEVICE(kernel, call, ...) \
  on_cuda(kernel, {__VA_ARGS__});            \
  cpu::call;
#endif

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  if (src.device() == dst.device()) {
    PLATEAU_ON_DEVICE("copy", copy(src, dst), &src, &dst);
    return;
  }
  // Across devices: make src dense on its own device, move its bytes, then convert/broadcast/stride
  // on dst's device.
  Tensor s = dense(src);
  bool plain = s.dtype() == dst.dtype() && s.shape() == dst.shape() && dst.is_contiguous();
  Tensor staged = plain ? dst : empty(s.shape(), s.dtype(), dst.device());
  int device = src.device().is_cuda() ? src.device().index : dst.device().index;
  cuda::copy_bytes(staged.raw_data(), staged.device().is_cuda(), s.raw_data(), s.device().is_cuda(),
                   static_cast<size_t>(s.numel()) * element_size(s.dtype()), device);
  if (!plain) copy(staged, dst);
}

void fill(const Tensor& dst, double value) { PLATEAU_ON_DEVICE("fill", fill(dst, value), &dst); }

Tensor dense(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor c = empty(x.shape(), x.dtype(), x.device());
  copy(x, c);
  return c;
}

void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  PLATEAU_ON_DEVICE("unary", unary(op, x, out, p0, p1), &x, &out);
}
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha) {
  PLATEAU_ON_DEVICE("binary", binary(op, a, b, out, alpha), &a, &b, &out);
}
void compare(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  PLATEAU_ON_DEVICE("compare", compare(op, a, b, out), &a, &b, &out);
}
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  PLATEAU_ON_DEVICE("where", where(cond, a, b, out), &cond, &a, &b, &out);
}
void isfinite(const Tensor& x, const Tensor& out) { PLATEAU_ON_DEVICE("isfinite", isfinite(x, out), &x, &out); }

void sum(const Tensor& x, const std::vector<bool>& reduced, const Tensor& out) {
  PLATEAU_ON_DEVICE("sum", sum(x, reduced, out), &x, &out);
}
void arg_extreme(const Tensor& x, int64_t dim, bool largest, const Tensor& out) {
  PLATEAU_ON_DEVICE("argmax/argmin", arg_extreme(x, dim, largest, out), &x, &out);
}
void topk_indices(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out) {
  PLATEAU_ON_DEVICE("topk", topk_indices(x, k, dim, largest, out), &x, &out);
}
void softmax(const Tensor& x, const Tensor& out, int64_t dim, bool log) {
  PLATEAU_ON_DEVICE("softmax", softmax(x, out, dim, log), &x, &out);
}

BadIndex find_out_of_range(const Tensor& index, int64_t size) {
#if PLATEAU_CUDA
  if (index.device().is_cuda()) return cuda::find_out_of_range(index, size);
#endif
  return cpu::find_out_of_range(index, size);
}
void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  PLATEAU_ON_DEVICE("index_select", index_select(x, dim, index, out), &x, &index, &out);
}
void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source) {
  PLATEAU_ON_DEVICE("index_add", index_add(out, dim, index, source), &out, &index, &source);
}
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  PLATEAU_ON_DEVICE("gather", gather(x, dim, index, out), &x, &index, &out);
}
void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  PLATEAU_ON_DEVICE("scatter_add", scatter_add(out, dim, index, src), &out, &index, &src);
}
void masked_fill(const Tensor& out, const Tensor& mask, double value) {
  PLATEAU_ON_DEVICE("masked_fill", masked_fill(out, mask, value), &out, &mask);
}
void one_hot(const Tensor& indices, const Tensor& out) {
  PLATEAU_ON_DEVICE("one_hot", one_hot(indices, out), &indices, &out);
}

void gemm_batched(DType dtype, Device device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                  const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, void* c,
                  int64_t ldc, int64_t stride_c, int64_t batches) {
  if (device.is_cuda()) {
#if PLATEAU_CUDA
    cuda::gemm_batched(dtype, device.index, trans_a, trans_b, m, n, k, a, lda, stride_a, b, ldb, stride_b, c, ldc,
                       stride_c, batches);
    return;
#endif
  }
  auto run = [&]<typename T>(T) {
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* pc = static_cast<T*>(c);
    if (batches == 1) {
      cpu::gemm_parallel<T>(trans_a, trans_b, m, n, k, 1, pa, lda, pb, ldb, 0, pc, ldc);
      return;
    }
    int64_t grain = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, m * n * k));
    parallel_for(batches, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        cpu::gemm<T>(trans_a, trans_b, m, n, k, 1, pa + i * stride_a, lda, pb + i * stride_b, ldb, 0, pc + i * stride_c,
                     ldc);
    });
  };
  if (dtype == DType::f64)
    run(double{});
  else
    run(float{});
}
void batched_outer(const Tensor& a, const Tensor& c, const Tensor& out) {
  PLATEAU_ON_DEVICE("batched_outer", batched_outer(a, c, out), &a, &c, &out);
}

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& out, const ConvGeometry& g) {
  PLATEAU_ON_DEVICE("conv2d", conv2d_forward(x, weight, out, g), &x, &weight, &out);
}
void conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x, const ConvGeometry& g) {
  PLATEAU_ON_DEVICE("conv2d_input_grad", conv2d_input_grad(grad_out, weight, grad_x, g), &grad_out, &weight, &grad_x);
}
void conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const ConvGeometry& g) {
  PLATEAU_ON_DEVICE("conv2d_weight_grad", conv2d_weight_grad(x, grad_out, grad_w, g), &x, &grad_out, &grad_w);
}
void conv2d_weight_grad_per_example(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                    const ConvGeometry& g) {
  PLATEAU_ON_DEVICE("conv2d per-example weight grad", conv2d_weight_grad_per_example(x, grad_out, grad_w, g), &x,
                    &grad_out, &grad_w);
}
void conv2d_weight_grad_sq_norms(const Tensor& x, const Tensor& grad_out, const Tensor& sq, const ConvGeometry& g) {
  PLATEAU_ON_DEVICE("conv2d per-example grad norms", conv2d_weight_grad_sq_norms(x, grad_out, sq, g), &x, &grad_out,
                    &sq);
}
void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const PoolGeometry& g) {
  PLATEAU_ON_DEVICE("max_pool2d", max_pool2d(x, values, indices, g), &x, &values, &indices);
}

bool has_fused_batch_norm(const Tensor& x) { return x.device().is_cuda() && x.is_floating_point(); }

void batch_norm_train_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                              const Tensor& running_var, double momentum, double eps, const Tensor& y,
                              const Tensor& save_mean, const Tensor& save_invstd) {
  on_cuda("batch_norm", {&x, &weight, &bias, &running_mean, &running_var, &y});
#if PLATEAU_CUDA
  cuda::batch_norm_train_forward(x, weight, bias, running_mean, running_var, momentum, eps, y, save_mean, save_invstd);
#else
  (void)momentum, (void)eps, (void)save_mean, (void)save_invstd;
  throw std::logic_error("plateau: batch_norm: no fused kernel on " + x.device().str());
#endif
}

void batch_norm_train_backward(const Tensor& x, const Tensor& grad_y, const Tensor& weight, const Tensor& save_mean,
                               const Tensor& save_invstd, double eps, const Tensor& grad_x, const Tensor& grad_weight,
                               const Tensor& grad_bias) {
  on_cuda("batch_norm backward", {&x, &grad_y, &weight, &grad_x});
#if PLATEAU_CUDA
  cuda::batch_norm_train_backward(x, grad_y, weight, save_mean, save_invstd, eps, grad_x, grad_weight, grad_bias);
#else
  (void)save_mean, (void)save_invstd, (void)eps, (void)grad_weight, (void)grad_bias;
  throw std::logic_error("plateau: batch_norm: no fused kernel on " + x.device().str());
#endif
}

}  // namespace plateau::kernels
