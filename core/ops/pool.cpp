// 2-d pooling, built from ops that already have derivatives of every order:
//   max_pool2d = x at the window argmax (gradient: scatter_add; second derivative: gather)
//   avg_pool2d = depthwise conv2d with a constant 1/(kH·kW) kernel (count_include_pad, as torch)
//   adaptive_avg_pool2d = P_h · x · P_wᵀ with constant averaging matrices
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using namespace ops_detail;

namespace {

// [C, H, W] inputs are pooled as [1, C, H, W].
Tensor as_batched(const Tensor& x, const char* op) {
  if (!x.defined()) fail(op, "input is undefined");
  if (!x.is_floating_point()) fail(op, std::string("input must be floating, got ") + dtype_name(x.dtype()));
  if (x.dim() == 3) return unsqueeze(x, 0);
  if (x.dim() != 4) fail(op, "input must be [N, C, H, W] or [C, H, W], got shape " + x.shape().str());
  return x;
}

Tensor unbatched(const Tensor& y, const Tensor& x) { return x.dim() == 3 ? squeeze(y, 0) : y; }

kernels::PoolGeometry pool_geometry(const Shape& x, const Pool2dOptions& o, const char* op) {
  kernels::PoolGeometry g;
  g.planes = x[0] * x[1], g.height = x[2], g.width = x[3];
  g.kernel_h = o.kernel[0], g.kernel_w = o.kernel[1];
  g.stride_h = o.stride[0] == 0 ? o.kernel[0] : o.stride[0];
  g.stride_w = o.stride[1] == 0 ? o.kernel[1] : o.stride[1];
  g.pad_h = o.padding[0], g.pad_w = o.padding[1];
  const auto opts = "kernel (" + std::to_string(g.kernel_h) + ", " + std::to_string(g.kernel_w) + "), stride (" +
                    std::to_string(g.stride_h) + ", " + std::to_string(g.stride_w) + "), padding (" +
                    std::to_string(g.pad_h) + ", " + std::to_string(g.pad_w) + ")";
  if (g.kernel_h < 1 || g.kernel_w < 1 || g.stride_h < 1 || g.stride_w < 1 || g.pad_h < 0 || g.pad_w < 0)
    fail(op, "kernel must be >= 1, stride >= 0 (0: the kernel size) and padding >= 0; got " + opts);
  if (2 * g.pad_h > g.kernel_h || 2 * g.pad_w > g.kernel_w)
    fail(op, "padding must be at most half the kernel size; got " + opts);
  if (g.kernel_h > g.height + 2 * g.pad_h || g.kernel_w > g.width + 2 * g.pad_w)
    fail(op, "the window does not fit the input " + x.str() + " with " + opts);
  g.out_h = (g.height + 2 * g.pad_h - g.kernel_h) / g.stride_h + 1;
  g.out_w = (g.width + 2 * g.pad_w - g.kernel_w) / g.stride_w + 1;
  return g;
}

}  // namespace

// y[n, c, i, j] = x[n, c, argmax over window (i, j)];  dx = scatter_add(zeros, argmax, g), whose own
// derivative is a gather at the same indices: derivatives of every order without a new rule
Tensor max_pool2d(const Tensor& input, const Pool2dOptions& options) {
  Tensor x = as_batched(input, "max_pool2d");
  const kernels::PoolGeometry g = pool_geometry(x.shape(), options, "max_pool2d");
  const int64_t n = x.size(0), c = x.size(1);
  Tensor y = empty({n, c, g.out_h, g.out_w}, x.dtype(), x.device());
  Tensor indices = empty({n, c, g.out_h * g.out_w}, DType::i64, x.device());
  kernels::max_pool2d(x, y, indices, g);
  if (autograd::should_record({&x})) {
    autograd::record("max_pool2d", {x}, {&y}, {indices}, [g, shape = x.shape()](autograd::BackwardContext& ctx) {
      const Tensor& grad = ctx.grad();
      const int64_t n = shape[0], c = shape[1];
      Tensor flat = scatter_add(zeros({n, c, g.height * g.width}, grad.dtype(), grad.device()), 2, ctx.saved(0),
                                reshape(grad, {n, c, g.out_h * g.out_w}));
      return TensorList{reshape(flat, shape)};
    }).examples(autograd::ExampleMap::rowwise);
  }
  return unbatched(y, input);
}

PLATEAU_REGISTER_OP(
    {"max_pool2d",
     "dx = scatter_add(zeros, argmax, g)",
     {{"kernel 2",
       {registry::real({1, 2, 4, 4})},
       [](const TensorList& in) -> TensorList { return {max_pool2d(in[0], {})}; }},
      {"kernel 3 stride 2 padding 1",
       {registry::real({2, 1, 5, 5})},
       [](const TensorList& in) -> TensorList {
         return {max_pool2d(in[0], {{3, 3}, {2, 2}, {1, 1}})};
       }},
      {"kernel (2, 3) stride (1, 2), [C, H, W]", {registry::real({2, 4, 5})}, [](const TensorList& in) -> TensorList {
         return {max_pool2d(in[0], {{2, 3}, {1, 2}, {0, 0}})};
       }}}});

// y = conv2d(x, 1/(kH·kW), groups = C), padding counted as zeros;  dx = conv2d_input_grad(g, same kernel)
Tensor avg_pool2d(const Tensor& input, const Pool2dOptions& options) {
  Tensor x = as_batched(input, "avg_pool2d");
  const kernels::PoolGeometry g = pool_geometry(x.shape(), options, "avg_pool2d");
  const int64_t c = x.size(1);
  Tensor kernel =
      full({c, 1, g.kernel_h, g.kernel_w}, 1.0 / static_cast<double>(g.kernel_h * g.kernel_w), x.dtype(), x.device());
  Conv2dOptions conv;
  conv.stride = {g.stride_h, g.stride_w};
  conv.padding = {g.pad_h, g.pad_w};
  conv.groups = c;
  return unbatched(conv2d(x, kernel, {}, conv), input);
}

PLATEAU_REGISTER_OP(
    {"avg_pool2d",
     "dx = conv2d_input_grad(g, 1/(kH·kW), groups = C)",
     {{"kernel 2",
       {registry::real({1, 2, 4, 4})},
       [](const TensorList& in) -> TensorList { return {avg_pool2d(in[0], {})}; }},
      {"kernel 3 stride 2 padding 1", {registry::real({2, 2, 5, 5})}, [](const TensorList& in) -> TensorList {
         return {avg_pool2d(in[0], {{3, 3}, {2, 2}, {1, 1}})};
       }}}});

namespace {

// [out, in]: row i averages the window [floor(i·in/out), ceil((i+1)·in/out)) (torch's rule).
Tensor averaging_matrix(int64_t out, int64_t in, DType dtype, Device device) {
  std::vector<double> m(out * in, 0.0);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t start = i * in / out, end = ((i + 1) * in + out - 1) / out;
    for (int64_t j = start; j < end; ++j) m[i * in + j] = 1.0 / static_cast<double>(end - start);
  }
  return to_device(tensor(m, {out, in}, dtype), device);
}

}  // namespace

// y = P_h · x · P_wᵀ over the last two dims;  dx = P_hᵀ · g · P_w
Tensor adaptive_avg_pool2d(const Tensor& input, std::array<int64_t, 2> output_size) {
  Tensor x = as_batched(input, "adaptive_avg_pool2d");
  if (output_size[0] < 1 || output_size[1] < 1)
    fail("adaptive_avg_pool2d", "output_size must be positive, got (" + std::to_string(output_size[0]) + ", " +
                                    std::to_string(output_size[1]) + ")");
  if (x.size(2) < 1 || x.size(3) < 1) fail("adaptive_avg_pool2d", "input " + x.shape().str() + " has an empty plane");
  Tensor ph = averaging_matrix(output_size[0], x.size(2), x.dtype(), x.device());
  Tensor pw_t = transpose(averaging_matrix(output_size[1], x.size(3), x.dtype(), x.device()), 0, 1);
  return unbatched(matmul(matmul(ph, x), pw_t), input);
}

PLATEAU_REGISTER_OP({"adaptive_avg_pool2d",
                     "dx = P_hᵀ · g · P_w",
                     {{"5x7 to 3x4 (overlapping windows)",
                       {registry::real({1, 2, 5, 7})},
                       [](const TensorList& in) -> TensorList {
                         return {adaptive_avg_pool2d(in[0], {3, 4})};
                       }},
                      {"global, [C, H, W]", {registry::real({2, 3, 3})}, [](const TensorList& in) -> TensorList {
                         return {adaptive_avg_pool2d(in[0], {1, 1})};
                       }}}});

}  // namespace plateau
