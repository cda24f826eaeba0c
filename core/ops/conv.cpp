// 2-d convolution and its two backward halves. The three ops close under differentiation: each
// one's backward is written with the other two (and itself), so conv has derivatives of any order.
//   y = conv2d(x, w)            dx = conv2d_input_grad(g, w)   dw = conv2d_weight_grad(x, g)
//   gx = conv2d_input_grad(g, w): dg = conv2d(h, w)             dw = conv2d_weight_grad(h, g)
//   gw = conv2d_weight_grad(x, g): dx = conv2d_input_grad(g, h) dg = conv2d(x, h)
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/grad_mode.h"
#include "core/autograd/per_example.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using namespace ops_detail;

namespace {

std::string pair_str(const std::array<int64_t, 2>& p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// Checks the shapes and options and works out the output size.
kernels::ConvGeometry geometry(const Shape& x, const Shape& w, const Conv2dOptions& o, const char* op) {
  if (x.size() != 4) fail(op, "input must be [N, C, H, W], got shape " + x.str());
  if (w.size() != 4) fail(op, "weight must be [O, C/groups, kH, kW], got shape " + w.str());
  if (o.groups < 1) fail(op, "groups must be >= 1, got " + std::to_string(o.groups));
  for (int i = 0; i < 2; ++i) {
    if (o.stride[i] < 1) fail(op, "stride must be >= 1, got " + pair_str(o.stride));
    if (o.dilation[i] < 1) fail(op, "dilation must be >= 1, got " + pair_str(o.dilation));
    if (o.padding[i] < 0) fail(op, "padding must be >= 0, got " + pair_str(o.padding));
  }
  if (x[1] % o.groups != 0)
    fail(op, "input channels (" + std::to_string(x[1]) + ", input " + x.str() +
                 ") are not divisible by groups = " + std::to_string(o.groups));
  if (w[0] % o.groups != 0)
    fail(op, "output channels (" + std::to_string(w[0]) + ", weight " + w.str() +
                 ") are not divisible by groups = " + std::to_string(o.groups));
  if (w[1] * o.groups != x[1])
    fail(op, "weight " + w.str() + " expects " + std::to_string(w[1]) + " input channels per group (" +
                 std::to_string(w[1] * o.groups) + " with groups = " + std::to_string(o.groups) + "), but input " +
                 x.str() + " has " + std::to_string(x[1]) + " channels");
  kernels::ConvGeometry g;
  g.batch = x[0], g.channels = x[1], g.height = x[2], g.width = x[3];
  g.out_channels = w[0], g.kernel_h = w[2], g.kernel_w = w[3];
  g.stride_h = o.stride[0], g.stride_w = o.stride[1];
  g.pad_h = o.padding[0], g.pad_w = o.padding[1];
  g.dilation_h = o.dilation[0], g.dilation_w = o.dilation[1];
  g.groups = o.groups;
  const int64_t span_h = g.dilation_h * (g.kernel_h - 1) + 1, span_w = g.dilation_w * (g.kernel_w - 1) + 1;
  if (g.kernel_h < 1 || g.kernel_w < 1 || span_h > g.height + 2 * g.pad_h || span_w > g.width + 2 * g.pad_w)
    fail(op, "kernel " + std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) + " (dilation " +
                 pair_str(o.dilation) + ") does not fit the input " + x.str() + " with padding " + pair_str(o.padding) +
                 "; pad the input or use a smaller kernel");
  g.out_h = (g.height + 2 * g.pad_h - span_h) / g.stride_h + 1;
  g.out_w = (g.width + 2 * g.pad_w - span_w) / g.stride_w + 1;
  return g;
}

Shape output_shape(const kernels::ConvGeometry& g) { return {g.batch, g.out_channels, g.out_h, g.out_w}; }

void check_dtypes(const Tensor& a, const char* a_name, const Tensor& b, const char* b_name, const char* op) {
  if (!a.defined() || !b.defined()) fail(op, std::string(a.defined() ? b_name : a_name) + " is undefined");
  if (!a.is_floating_point() || a.dtype() != b.dtype())
    fail(op, std::string(a_name) + " (" + dtype_name(a.dtype()) + ") and " + b_name + " (" + dtype_name(b.dtype()) +
                 ") must have the same floating dtype");
}

void check_grad_shape(const Tensor& grad_output, const kernels::ConvGeometry& g, const char* op) {
  if (grad_output.shape() != output_shape(g))
    fail(op, "grad_output has shape " + grad_output.shape().str() + " but the convolution's output is " +
                 output_shape(g).str());
}

using autograd::PerExampleGrad;
using autograd::PerExampleWant;

// Per image n: dW_n = grad[n] · col(x[n])ᵀ (or only its squared norm, see kernels::conv2d_weight_grad_sq_norms),
// db_n = Σ_pixels grad[n].
std::vector<PerExampleGrad> conv2d_per_example(autograd::BackwardContext& c, const std::vector<PerExampleWant>& want,
                                               const Conv2dOptions& options) {
  Tensor x = c.saved(0), w = c.saved(1);
  const Tensor& h = c.grad();
  const kernels::ConvGeometry g = geometry(x.shape(), w.shape(), options, "conv2d");
  std::vector<PerExampleGrad> r(3);
  if (want[0] != PerExampleWant::none) r[0] = {conv2d_input_grad(h, w, x.shape(), options), false};
  if (want[1] == PerExampleWant::sq_norm) {
    Tensor sq = empty({g.batch}, x.dtype(), x.device());
    kernels::conv2d_weight_grad_sq_norms(x, h, sq, g);
    r[1] = {sq, true};
  } else if (want[1] == PerExampleWant::per_example) {
    Shape shape{g.batch};
    for (int64_t d : w.shape()) shape.push_back(d);
    Tensor dw = empty(shape, x.dtype(), x.device());
    kernels::conv2d_weight_grad_per_example(x, h, dw, g);
    r[1] = {dw, true};
  }
  if (want[2] != PerExampleWant::none) {
    Tensor db = sum(h, {2, 3});
    r[2] = {want[2] == PerExampleWant::sq_norm ? autograd::squared_norms(db) : db, true};
  }
  return r;
}

}  // namespace

// y[n, o] = Σ_{c in o's group, i, j} w[o, c, i, j] · x[n, c, oh·s + i·d − p, ow·s + j·d − p] (+ b[o])
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  check_dtypes(x, "input", weight, "weight", "conv2d");
  const kernels::ConvGeometry g = geometry(x.shape(), weight.shape(), options, "conv2d");
  if (bias.defined()) {
    check_dtypes(x, "input", bias, "bias", "conv2d");
    if (bias.dim() != 1 || bias.numel() != g.out_channels)
      fail("conv2d", "bias must be [" + std::to_string(g.out_channels) + "] (one per output channel of weight " +
                         weight.shape().str() + "), got " + bias.shape().str());
  }
  Tensor y = empty(output_shape(g), x.dtype(), x.device());
  kernels::conv2d_forward(x, weight, y, g);
  if (bias.defined()) {
    // Added in place into the fresh output: one pass, no second activation-sized allocation.
    NoGradGuard no_grad;
    add_(y, reshape(bias.detach(), {1, g.out_channels, 1, 1}));
  }
  if (autograd::should_record({&x, &weight, &bias}))
    autograd::record("conv2d", {x, weight, bias}, {&y}, {x, weight},
                     [options](autograd::BackwardContext& c) -> TensorList {
                       Tensor x = c.saved(0), w = c.saved(1);
                       const Tensor& h = c.grad();
                       return {c.needs_input_grad(0) ? conv2d_input_grad(h, w, x.shape(), options) : Tensor(),
                               c.needs_input_grad(1) ? conv2d_weight_grad(x, h, w.shape(), options) : Tensor(),
                               c.needs_input_grad(2) ? sum(h, {0, 2, 3}) : Tensor()};
                     })
        .per_example([options](autograd::BackwardContext& c, const std::vector<autograd::PerExampleWant>& want) {
          return conv2d_per_example(c, want, options);
        });
  return y;
}

PLATEAU_REGISTER_OP({"conv2d",
                     "dx = conv2d_input_grad(g, w), dw = conv2d_weight_grad(x, g), db = Σ_{n,h,w} g",
                     {{"3x3 with bias",
                       {registry::real({2, 2, 4, 4}), registry::real({3, 2, 3, 3}), registry::real({3})},
                       [](const TensorList& in) -> TensorList { return {conv2d(in[0], in[1], in[2])}; }},
                      {"stride 2 padding 1",
                       {registry::real({1, 2, 5, 5}), registry::real({2, 2, 3, 3})},
                       [](const TensorList& in) -> TensorList {
                         Conv2dOptions o;
                         o.stride = {2, 2};
                         o.padding = {1, 1};
                         return {conv2d(in[0], in[1], {}, o)};
                       }},
                      {"groups 2, dilation (2, 1), stride (1, 2), padding (0, 1)",
                       {registry::real({1, 4, 5, 4}), registry::real({4, 2, 2, 2})},
                       [](const TensorList& in) -> TensorList {
                         Conv2dOptions o;
                         o.groups = 2;
                         o.dilation = {2, 1};
                         o.stride = {1, 2};
                         o.padding = {0, 1};
                         return {conv2d(in[0], in[1], {}, o)};
                       }}}});

// gx = Aᵀ g where A is conv2d(·, w) as a linear map of x;  dg = conv2d(h, w), dw = conv2d_weight_grad(h, g)
Tensor conv2d_input_grad(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                         const Conv2dOptions& options) {
  const char* op = "conv2d_input_grad";
  check_dtypes(grad_output, "grad_output", weight, "weight", op);
  const kernels::ConvGeometry g = geometry(input_shape, weight.shape(), options, op);
  check_grad_shape(grad_output, g, op);
  Tensor gx = empty(input_shape, grad_output.dtype(), grad_output.device());
  kernels::conv2d_input_grad(grad_output, weight, gx, g);
  if (autograd::should_record({&grad_output, &weight})) {
    autograd::record(op, {grad_output, weight}, {&gx}, {grad_output, weight},
                     [options](autograd::BackwardContext& c) -> TensorList {
                       Tensor go = c.saved(0), w = c.saved(1);
                       const Tensor& h = c.grad();
                       return {c.needs_input_grad(0) ? conv2d(h, w, {}, options) : Tensor(),
                               c.needs_input_grad(1) ? conv2d_weight_grad(h, go, w.shape(), options) : Tensor()};
                     });
  }
  return gx;
}

PLATEAU_REGISTER_OP({"conv2d_input_grad",
                     "dg = conv2d(h, w), dw = conv2d_weight_grad(h, g)",
                     {{"3x3",
                       {registry::real({2, 3, 2, 2}), registry::real({3, 2, 3, 3})},
                       [](const TensorList& in) -> TensorList {
                         return {conv2d_input_grad(in[0], in[1], {2, 2, 4, 4}, {})};
                       }},
                      {"stride 2 padding 1 groups 2",
                       {registry::real({1, 2, 3, 3}), registry::real({2, 1, 3, 2})},
                       [](const TensorList& in) -> TensorList {
                         Conv2dOptions o;
                         o.stride = {2, 2};
                         o.padding = {1, 1};
                         o.groups = 2;
                         return {conv2d_input_grad(in[0], in[1], {1, 2, 5, 4}, o)};
                       }}}});

// gw = Σ_n g[n] · col(x[n])ᵀ;  dx = conv2d_input_grad(g, h), dg = conv2d(x, h)
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_output, const Shape& weight_shape,
                          const Conv2dOptions& options) {
  const char* op = "conv2d_weight_grad";
  check_dtypes(x, "input", grad_output, "grad_output", op);
  const kernels::ConvGeometry g = geometry(x.shape(), weight_shape, options, op);
  check_grad_shape(grad_output, g, op);
  Tensor gw = empty(weight_shape, x.dtype(), x.device());
  kernels::conv2d_weight_grad(x, grad_output, gw, g);
  if (autograd::should_record({&x, &grad_output})) {
    autograd::record(op, {x, grad_output}, {&gw}, {x, grad_output},
                     [options](autograd::BackwardContext& c) -> TensorList {
                       Tensor x = c.saved(0), go = c.saved(1);
                       const Tensor& h = c.grad();
                       return {c.needs_input_grad(0) ? conv2d_input_grad(go, h, x.shape(), options) : Tensor(),
                               c.needs_input_grad(1) ? conv2d(x, h, {}, options) : Tensor()};
                     });
  }
  return gw;
}

PLATEAU_REGISTER_OP({"conv2d_weight_grad",
                     "dx = conv2d_input_grad(g, h), dg = conv2d(x, h)",
                     {{"3x3",
                       {registry::real({2, 2, 4, 4}), registry::real({2, 3, 2, 2})},
                       [](const TensorList& in) -> TensorList {
                         return {conv2d_weight_grad(in[0], in[1], {3, 2, 3, 3}, {})};
                       }},
                      {"stride 2 padding 1 dilation 2 groups 2",
                       {registry::real({1, 2, 5, 4}), registry::real({1, 4, 3, 2})},
                       [](const TensorList& in) -> TensorList {
                         Conv2dOptions o;
                         o.stride = {2, 2};
                         o.padding = {1, 1};
                         o.dilation = {2, 2};
                         o.groups = 2;
                         return {conv2d_weight_grad(in[0], in[1], {4, 1, 2, 2}, o)};
                       }}}});

}  // namespace plateau
