// Elementwise ops: checks, forward kernel call, backward rule in public ops, registry entry.
// Binary ops need equal dtypes and broadcast with numpy rules; the engine sums broadcast gradients
// back to each input's shape, so backward rules return gradients of the broadcast shape.
#include "core/ops/elementwise.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using autograd::BackwardContext;
using registry::InputSpec;
using registry::OpCase;
using namespace ops_detail;

namespace {

Tensor unary_forward(const char* op, kernels::UnaryOp kernel, const Tensor& x, double p0 = 0.0, double p1 = 0.0) {
  check_defined(op, x);
  check_floating(op, x);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  kernels::unary(kernel, x, out, p0, p1);
  return out;
}

Tensor binary_forward(const char* op, kernels::BinaryOp kernel, const Tensor& a, const Tensor& b, bool floating_only) {
  check_defined(op, a);
  check_defined(op, b);
  check_same_dtype(op, a, b);
  if (floating_only)
    check_floating(op, a);
  else
    check_numeric(op, a);
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), op), a.dtype(), a.device());
  kernels::binary(kernel, a, b, out);
  return out;
}

// g where mask holds, 0 elsewhere: the gradient of every "pass or block" op (relu, clamp, where).
Tensor pass_where(const Tensor& mask, const Tensor& g) { return where(mask, g, scalar_like(g, 0.0)); }

TensorList one_input(const Tensor& g) { return {g}; }

// Every op in this file works elementwise with broadcasting, so each treats the example dimension alike.
void record_elementwise(const char* name, const TensorList& inputs, std::initializer_list<Tensor*> outputs,
                        const TensorList& saved, autograd::BackwardFn backward) {
  autograd::record(name, inputs, outputs, saved, std::move(backward)).examples(autograd::ExampleMap::elementwise);
}

// Registry helpers: a case of one input and a case of two inputs.
OpCase case1(std::string label, InputSpec x, std::function<Tensor(const Tensor&)> f) {
  return {std::move(label), {std::move(x)}, [f](const TensorList& in) -> TensorList { return {f(in[0])}; }};
}
OpCase case2(std::string label, InputSpec a, InputSpec b, std::function<Tensor(const Tensor&, const Tensor&)> f) {
  return {std::move(label), {std::move(a), std::move(b)}, [f](const TensorList& in) -> TensorList {
            return {f(in[0], in[1])};
          }};
}

}  // namespace

// d(-x) = -dx
Tensor neg(const Tensor& x) {
  check_defined("neg", x);
  check_numeric("neg", x);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  kernels::unary(kernels::UnaryOp::neg, x, y);
  if (autograd::should_record({&x}))
    record_elementwise("neg", {x}, {&y}, {}, [](BackwardContext& c) -> TensorList { return one_input(neg(c.grad())); });
  return y;
}
PLATEAU_REGISTER_OP({"neg",
                     "d(-x) = -dx",
                     {case1("", registry::real({3, 4}), [](const Tensor& x) { return neg(x); }),
                      case1("0-d", registry::real({}), [](const Tensor& x) { return -x; })}});

// d(a + b) = da + db
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("add", kernels::BinaryOp::add, a, b, false);
  if (autograd::should_record({&a, &b}))
    record_elementwise("add", {a, b}, {&y}, {}, [](BackwardContext& c) -> TensorList {
      return {c.needs_input_grad(0) ? c.grad() : Tensor(), c.needs_input_grad(1) ? c.grad() : Tensor()};
    });
  return y;
}
PLATEAU_REGISTER_OP({"add",
                     "d(a + b) = da + db",
                     {case2("broadcast [3, 4] + [4]", registry::real({3, 4}), registry::real({4}),
                            [](const Tensor& a, const Tensor& b) { return add(a, b); }),
                      case2("broadcast [2, 1, 3] + [4, 1]", registry::real({2, 1, 3}), registry::real({4, 1}),
                            [](const Tensor& a, const Tensor& b) { return a + b; }),
                      case1("scalar", registry::real({2, 3}), [](const Tensor& x) { return add(x, 1.5); })}});

// d(a - b) = da - db
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("sub", kernels::BinaryOp::sub, a, b, false);
  if (autograd::should_record({&a, &b}))
    record_elementwise("sub", {a, b}, {&y}, {}, [](BackwardContext& c) -> TensorList {
      return {c.needs_input_grad(0) ? c.grad() : Tensor(), c.needs_input_grad(1) ? neg(c.grad()) : Tensor()};
    });
  return y;
}
PLATEAU_REGISTER_OP({"sub",
                     "d(a - b) = da - db",
                     {case2("broadcast [3, 1] - [1, 4]", registry::real({3, 1}), registry::real({1, 4}),
                            [](const Tensor& a, const Tensor& b) { return sub(a, b); }),
                      case1("scalar", registry::real({5}), [](const Tensor& x) { return sub(x, 0.5); }),
                      case1("scalar minus tensor", registry::real({2, 3}), [](const Tensor& x) { return 2.0 - x; })}});

// d(a b) = b da + a db
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("mul", kernels::BinaryOp::mul, a, b, false);
  if (autograd::should_record({&a, &b}))
    // Each operand is kept only for the other's gradient: a gradient contracted with constants
    // (the HVP's g·v) does not keep g alive.
    record_elementwise("mul", {a, b}, {&y}, {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()},
                       [](BackwardContext& c) -> TensorList {
                         const Tensor& g = c.grad();
                         return {c.needs_input_grad(0) ? mul(g, c.saved(1)) : Tensor(),
                                 c.needs_input_grad(1) ? mul(g, c.saved(0)) : Tensor()};
                       });
  return y;
}
PLATEAU_REGISTER_OP({"mul",
                     "d(a b) = b da + a db",
                     {case2("broadcast [2, 3, 4] * [3, 1]", registry::real({2, 3, 4}), registry::real({3, 1}),
                            [](const Tensor& a, const Tensor& b) { return mul(a, b); }),
                      case1("scalar", registry::real({2, 3}), [](const Tensor& x) { return mul(x, -1.5); }),
                      case1("x * x", registry::real({5}), [](const Tensor& x) { return x * x; })}});

// d(a / b) = da / b - a db / b²
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("div", kernels::BinaryOp::div, a, b, true);
  if (autograd::should_record({&a, &b}))
    record_elementwise("div", {a, b}, {&y}, {b.requires_grad() ? a : Tensor(), b},
                       [](BackwardContext& c) -> TensorList {
                         const Tensor& g = c.grad();
                         Tensor b = c.saved(1);
                         return {c.needs_input_grad(0) ? div(g, b) : Tensor(),
                                 c.needs_input_grad(1) ? neg(div(mul(g, c.saved(0)), mul(b, b))) : Tensor()};
                       });
  return y;
}
PLATEAU_REGISTER_OP({"div",
                     "d(a / b) = da / b - a db / b^2",
                     {case2("broadcast [3, 4] / [4]", registry::real({3, 4}), registry::away_from_zero({4}, 0.5, 2.0),
                            [](const Tensor& a, const Tensor& b) { return div(a, b); }),
                      case1("scalar", registry::real({2, 3}), [](const Tensor& x) { return div(x, 3.0); })}});

// d(a^b) = b a^(b-1) da + a^b log(a) db   (the db term is 0 where a = 0 and b >= 0, as torch)
Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor y = binary_forward("pow", kernels::BinaryOp::pow, base, exponent, true);
  if (autograd::should_record({&base, &exponent}))
    record_elementwise("pow", {base, exponent}, {&y}, {base, exponent, y}, [](BackwardContext& c) -> TensorList {
      const Tensor& g = c.grad();
      Tensor a = c.saved(0), b = c.saved(1);
      Tensor ga, gb;
      if (c.needs_input_grad(0)) ga = mul(g, mul(b, pow(a, sub(b, 1.0))));
      if (c.needs_input_grad(1)) {
        Tensor zero_base = logical_and(eq(a, 0.0), ge(b, 0.0));
        gb = pass_where(logical_not(zero_base), mul(g, mul(c.saved(2), log(a))));
      }
      return {ga, gb};
    });
  return y;
}

// d(x^p) = p x^(p-1) dx for a constant p
Tensor pow(const Tensor& base, double exponent) {
  Tensor y = unary_forward("pow", kernels::UnaryOp::pow_scalar, base, exponent);
  if (autograd::should_record({&base}))
    record_elementwise("pow", {base}, {&y}, {base}, [exponent](BackwardContext& c) -> TensorList {
      // Zero gradient for p = 0 without forming 0 * x^-1 (NaN at x = 0); g * 0 keeps the graph.
      if (exponent == 0.0) return one_input(mul(c.grad(), 0.0));
      return one_input(mul(c.grad(), mul(pow(c.saved(0), exponent - 1.0), exponent)));
    });
  return y;
}
PLATEAU_REGISTER_OP(
    {"pow",
     "d(a^b) = b a^(b-1) da + a^b log(a) db",
     {case2("tensor exponent, broadcast", registry::positive({2, 3}), registry::real({3}, -1.5, 1.5),
            [](const Tensor& a, const Tensor& b) { return pow(a, b); }),
      case1("scalar exponent 2.5", registry::positive({5}), [](const Tensor& x) { return pow(x, 2.5); }),
      case1("scalar exponent 3 on reals", registry::real({2, 3}), [](const Tensor& x) { return pow(x, 3.0); }),
      case1("scalar exponent -0.5", registry::positive({4}), [](const Tensor& x) { return pow(x, -0.5); })}});

// d exp(x) = exp(x) dx
Tensor exp(const Tensor& x) {
  Tensor y = unary_forward("exp", kernels::UnaryOp::exp, x);
  if (autograd::should_record({&x}))
    record_elementwise("exp", {x}, {&y}, {y},
                       [](BackwardContext& c) -> TensorList { return one_input(mul(c.grad(), c.saved(0))); });
  return y;
}
PLATEAU_REGISTER_OP({"exp", "d exp(x) = exp(x) dx", {case1("", registry::real({3, 4}), [](const Tensor& x) {
                       return exp(x);
                     })}});

// d log(x) = dx / x
Tensor log(const Tensor& x) {
  Tensor y = unary_forward("log", kernels::UnaryOp::log, x);
  if (autograd::should_record({&x}))
    record_elementwise("log", {x}, {&y}, {x},
                       [](BackwardContext& c) -> TensorList { return one_input(div(c.grad(), c.saved(0))); });
  return y;
}
PLATEAU_REGISTER_OP({"log", "d log(x) = dx / x", {case1("", registry::positive({3, 4}), [](const Tensor& x) {
                       return log(x);
                     })}});

// d log(1 + x) = dx / (1 + x)
Tensor log1p(const Tensor& x) {
  Tensor y = unary_forward("log1p", kernels::UnaryOp::log1p, x);
  if (autograd::should_record({&x}))
    record_elementwise("log1p", {x}, {&y}, {x},
                       [](BackwardContext& c) -> TensorList { return one_input(div(c.grad(), add(c.saved(0), 1.0))); });
  return y;
}
PLATEAU_REGISTER_OP({"log1p",
                     "d log(1 + x) = dx / (1 + x)",
                     {case1("", registry::positive({3, 4}, 0.0, 2.0), [](const Tensor& x) { return log1p(x); })}});

// d √x = dx / (2 √x)
Tensor sqrt(const Tensor& x) {
  Tensor y = unary_forward("sqrt", kernels::UnaryOp::sqrt, x);
  if (autograd::should_record({&x}))
    record_elementwise("sqrt", {x}, {&y}, {y},
                       [](BackwardContext& c) -> TensorList { return one_input(div(c.grad(), mul(c.saved(0), 2.0))); });
  return y;
}
PLATEAU_REGISTER_OP({"sqrt",
                     "d sqrt(x) = dx / (2 sqrt(x))",
                     {case1("", registry::positive({3, 4}), [](const Tensor& x) { return sqrt(x); })}});

// d x^(-1/2) = -x^(-3/2) / 2 dx = -y³ / 2 dx
Tensor rsqrt(const Tensor& x) {
  Tensor y = unary_forward("rsqrt", kernels::UnaryOp::rsqrt, x);
  if (autograd::should_record({&x}))
    record_elementwise("rsqrt", {x}, {&y}, {y}, [](BackwardContext& c) -> TensorList {
      Tensor y = c.saved(0);
      return one_input(mul(c.grad(), mul(mul(y, mul(y, y)), -0.5)));
    });
  return y;
}
PLATEAU_REGISTER_OP({"rsqrt",
                     "d x^(-1/2) = -x^(-3/2)/2 dx",
                     {case1("", registry::positive({3, 4}), [](const Tensor& x) { return rsqrt(x); })}});

// d|x| = sign(x) dx
Tensor abs(const Tensor& x) {
  check_defined("abs", x);
  check_numeric("abs", x);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  kernels::unary(kernels::UnaryOp::abs, x, y);
  if (autograd::should_record({&x}))
    record_elementwise("abs", {x}, {&y}, {x},
                       [](BackwardContext& c) -> TensorList { return one_input(mul(c.grad(), sign(c.saved(0)))); });
  return y;
}
PLATEAU_REGISTER_OP({"abs", "d|x| = sign(x) dx", {case1("", registry::away_from_zero({3, 4}), [](const Tensor& x) {
                       return abs(x);
                     })}});

// d sign(x) = 0
Tensor sign(const Tensor& x) {
  check_defined("sign", x);
  check_numeric("sign", x);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  kernels::unary(kernels::UnaryOp::sign, x, y);
  if (autograd::should_record({&x}))
    record_elementwise("sign", {x}, {&y}, {}, [](BackwardContext& c) -> TensorList {
      // g * 0 rather than a constant zero tensor: it stays a function of g, so gradients of
      // gradients through sign have a graph to follow (their value is zero either way).
      return one_input(mul(c.grad(), 0.0));
    });
  return y;
}
PLATEAU_REGISTER_OP({"sign", "d sign(x) = 0", {case1("", registry::away_from_zero({5}), [](const Tensor& x) {
                       return mul(sign(x), x);
                     })}});

// d relu(x) = [x > 0] dx
Tensor relu(const Tensor& x) {
  Tensor y = unary_forward("relu", kernels::UnaryOp::relu, x);
  if (autograd::should_record({&x}))
    record_elementwise("relu", {x}, {&y}, {y}, [](BackwardContext& c) -> TensorList {
      return one_input(pass_where(gt(c.saved(0), 0.0), c.grad()));
    });
  return y;
}
PLATEAU_REGISTER_OP({"relu",
                     "d relu(x) = [x > 0] dx",
                     {case1("", registry::away_from_zero({3, 4}), [](const Tensor& x) { return relu(x); })}});

// d leaky_relu(x) = (x > 0 ? 1 : slope) dx
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  Tensor y = unary_forward("leaky_relu", kernels::UnaryOp::leaky_relu, x, negative_slope);
  if (autograd::should_record({&x}))
    record_elementwise("leaky_relu", {x}, {&y}, {x}, [negative_slope](BackwardContext& c) -> TensorList {
      const Tensor& g = c.grad();
      return one_input(where(gt(c.saved(0), 0.0), g, mul(g, negative_slope)));
    });
  return y;
}
PLATEAU_REGISTER_OP(
    {"leaky_relu",
     "d leaky_relu(x) = (x > 0 ? 1 : slope) dx",
     {case1("slope 0.01", registry::away_from_zero({3, 4}), [](const Tensor& x) { return leaky_relu(x); }),
      case1("slope 0.2", registry::away_from_zero({7}), [](const Tensor& x) { return leaky_relu(x, 0.2); })}});

// erf form: d[x Φ(x)] = (Φ(x) + x φ(x)) dx, Φ(x) = (1 + erf(x/√2))/2, φ(x) = exp(-x²/2)/√(2π).
// tanh form: y = x (1 + t)/2, t = tanh(k (x + c x³)):  dy = [(1 + t)/2 + x (1 - t²) k (1 + 3c x²)/2] dx.
Tensor gelu(const Tensor& x, GeluApproximation approximate) {
  bool tanh_form = approximate == GeluApproximation::tanh;
  Tensor y = unary_forward("gelu", tanh_form ? kernels::UnaryOp::gelu_tanh : kernels::UnaryOp::gelu, x);
  if (autograd::should_record({&x}))
    record_elementwise("gelu", {x}, {&y}, {x}, [tanh_form](BackwardContext& c) -> TensorList {
      Tensor x = c.saved(0);
      Tensor x2 = mul(x, x);
      Tensor d;
      if (tanh_form) {
        const double k = 0.79788456080286535588, cc = 0.044715;  // √(2/π)
        Tensor t = tanh(mul(add(x, mul(mul(x2, x), cc)), k));
        Tensor inner = mul(add(mul(x2, 3.0 * cc), 1.0), k);  // k (1 + 3c x²)
        d = add(mul(add(t, 1.0), 0.5), mul(mul(x, 1.0 - mul(t, t)), mul(inner, 0.5)));
      } else {
        Tensor cdf = mul(add(erf(mul(x, M_SQRT1_2)), 1.0), 0.5);
        Tensor pdf = mul(exp(mul(x2, -0.5)), 0.39894228040143267794);  // 1/√(2π)
        d = add(cdf, mul(x, pdf));
      }
      return one_input(mul(c.grad(), d));
    });
  return y;
}
PLATEAU_REGISTER_OP({"gelu",
                     "d gelu(x) = (Phi(x) + x phi(x)) dx (tanh form: its own derivative)",
                     {case1("erf", registry::real({3, 4}, -3.0, 3.0), [](const Tensor& x) { return gelu(x); }),
                      case1("tanh", registry::real({3, 4}, -3.0, 3.0),
                            [](const Tensor& x) { return gelu(x, GeluApproximation::tanh); })}});

// d tanh(x) = (1 - tanh²(x)) dx
Tensor tanh(const Tensor& x) {
  Tensor y = unary_forward("tanh", kernels::UnaryOp::tanh, x);
  if (autograd::should_record({&x}))
    record_elementwise("tanh", {x}, {&y}, {y}, [](BackwardContext& c) -> TensorList {
      Tensor y = c.saved(0);
      return one_input(mul(c.grad(), 1.0 - mul(y, y)));
    });
  return y;
}
PLATEAU_REGISTER_OP({"tanh", "d tanh(x) = (1 - tanh(x)^2) dx", {case1("", registry::real({3, 4}), [](const Tensor& x) {
                       return tanh(x);
                     })}});

// d σ(x) = σ(x)(1 - σ(x)) dx
Tensor sigmoid(const Tensor& x) {
  Tensor y = unary_forward("sigmoid", kernels::UnaryOp::sigmoid, x);
  if (autograd::should_record({&x}))
    record_elementwise("sigmoid", {x}, {&y}, {y}, [](BackwardContext& c) -> TensorList {
      Tensor y = c.saved(0);
      return one_input(mul(c.grad(), mul(y, 1.0 - y)));
    });
  return y;
}
PLATEAU_REGISTER_OP({"sigmoid",
                     "d sigmoid(x) = sigmoid(x) (1 - sigmoid(x)) dx",
                     {case1("", registry::real({3, 4}, -4.0, 4.0), [](const Tensor& x) { return sigmoid(x); })}});

// d[log(1 + exp(βx))/β] = σ(βx) dx, and dx itself where βx > threshold (the linear branch)
Tensor softplus(const Tensor& x, double beta, double threshold) {
  if (beta == 0.0) throw std::invalid_argument("plateau: softplus: beta must be nonzero");
  Tensor y = unary_forward("softplus", kernels::UnaryOp::softplus, x, beta, threshold);
  if (autograd::should_record({&x}))
    record_elementwise("softplus", {x}, {&y}, {x}, [beta, threshold](BackwardContext& c) -> TensorList {
      const Tensor& g = c.grad();
      Tensor bx = mul(c.saved(0), beta);
      return one_input(where(gt(bx, threshold), g, mul(g, sigmoid(bx))));
    });
  return y;
}
PLATEAU_REGISTER_OP({"softplus",
                     "d softplus(x) = sigmoid(beta x) dx (dx above the threshold)",
                     {case1("beta 1", registry::real({3, 4}, -3.0, 3.0), [](const Tensor& x) { return softplus(x); }),
                      case1("beta 2 threshold 1", registry::real({9}, -2.0, 2.0),
                            [](const Tensor& x) { return softplus(x, 2.0, 1.0); })}});

// d sin(x) = cos(x) dx
Tensor sin(const Tensor& x) {
  Tensor y = unary_forward("sin", kernels::UnaryOp::sin, x);
  if (autograd::should_record({&x}))
    record_elementwise("sin", {x}, {&y}, {x},
                       [](BackwardContext& c) -> TensorList { return one_input(mul(c.grad(), cos(c.saved(0)))); });
  return y;
}
PLATEAU_REGISTER_OP({"sin", "d sin(x) = cos(x) dx", {case1("", registry::real({3, 4}), [](const Tensor& x) {
                       return sin(x);
                     })}});

// d cos(x) = -sin(x) dx
Tensor cos(const Tensor& x) {
  Tensor y = unary_forward("cos", kernels::UnaryOp::cos, x);
  if (autograd::should_record({&x}))
    record_elementwise("cos", {x}, {&y}, {x},
                       [](BackwardContext& c) -> TensorList { return one_input(neg(mul(c.grad(), sin(c.saved(0))))); });
  return y;
}
PLATEAU_REGISTER_OP({"cos", "d cos(x) = -sin(x) dx", {case1("", registry::real({3, 4}), [](const Tensor& x) {
                       return cos(x);
                     })}});

// d erf(x) = 2/√π exp(-x²) dx
Tensor erf(const Tensor& x) {
  Tensor y = unary_forward("erf", kernels::UnaryOp::erf, x);
  if (autograd::should_record({&x}))
    record_elementwise("erf", {x}, {&y}, {x}, [](BackwardContext& c) -> TensorList {
      Tensor x = c.saved(0);
      return one_input(mul(c.grad(), mul(exp(neg(mul(x, x))), 1.12837916709551257390)));  // 2/√π
    });
  return y;
}
PLATEAU_REGISTER_OP({"erf",
                     "d erf(x) = 2/sqrt(pi) exp(-x^2) dx",
                     {case1("", registry::real({3, 4}), [](const Tensor& x) { return erf(x); })}});

// d clamp(x, lo, hi) = [lo <= x <= hi] dx (torch's convention at the bounds)
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max) {
  if (!min && !max) throw std::invalid_argument("plateau: clamp: give at least one of min and max");
  double lo = min.value_or(-std::numeric_limits<double>::infinity());
  double hi = max.value_or(std::numeric_limits<double>::infinity());
  Tensor y = unary_forward("clamp", kernels::UnaryOp::clamp, x, lo, hi);
  if (autograd::should_record({&x}))
    record_elementwise("clamp", {x}, {&y}, {x}, [min, max](BackwardContext& c) -> TensorList {
      Tensor x = c.saved(0);
      Tensor mask;
      if (min) mask = ge(x, *min);
      if (max) mask = mask.defined() ? logical_and(mask, le(x, *max)) : le(x, *max);
      return one_input(pass_where(mask, c.grad()));
    });
  return y;
}
PLATEAU_REGISTER_OP(
    {"clamp",
     "d clamp(x, lo, hi) = [lo <= x <= hi] dx",
     {case1("min and max", registry::real({3, 4}), [](const Tensor& x) { return clamp(x, -0.5, 0.8); }),
      case1("min only", registry::real({7}), [](const Tensor& x) { return clamp(x, 0.3, std::nullopt); }),
      case1("max only", registry::real({2, 3}), [](const Tensor& x) { return clamp(x, std::nullopt, -0.2); })}});

namespace {
// Share of the gradient that goes to `a` in maximum/minimum: 1 where a wins, 1/2 at ties, 0 elsewhere.
Tensor winner_share(const Tensor& a_wins, const Tensor& a, const Tensor& b) {
  Tensor tie = where(eq(a, b), scalar_like(a, 0.5), scalar_like(a, 0.0));
  return where(a_wins, scalar_like(a, 1.0), tie);
}

Tensor extremum(const char* name, bool is_max, const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(name, is_max ? kernels::BinaryOp::maximum : kernels::BinaryOp::minimum, a, b, false);
  if (autograd::should_record({&a, &b}))
    record_elementwise(name, {a, b}, {&y}, {a, b}, [is_max](BackwardContext& c) -> TensorList {
      Tensor a = c.saved(0), b = c.saved(1);
      Tensor w = winner_share(is_max ? gt(a, b) : lt(a, b), a, b);
      const Tensor& g = c.grad();
      return {c.needs_input_grad(0) ? mul(g, w) : Tensor(), c.needs_input_grad(1) ? mul(g, 1.0 - w) : Tensor()};
    });
  return y;
}
}  // namespace

// d max(a, b) = [a > b] da + [a < b] db, split equally at ties
Tensor maximum(const Tensor& a, const Tensor& b) { return extremum("maximum", true, a, b); }
PLATEAU_REGISTER_OP({"maximum",
                     "d max(a, b) = [a > b] da + [a < b] db (halves at ties)",
                     {case2("broadcast [3, 4], [4]", registry::real({3, 4}), registry::real({4}),
                            [](const Tensor& a, const Tensor& b) { return maximum(a, b); }),
                      case2("broadcast [2, 1], [1, 3]", registry::real({2, 1}), registry::real({1, 3}),
                            [](const Tensor& a, const Tensor& b) { return maximum(a, b); })}});

// d min(a, b) = [a < b] da + [a > b] db, split equally at ties
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum("minimum", false, a, b); }
PLATEAU_REGISTER_OP({"minimum",
                     "d min(a, b) = [a < b] da + [a > b] db (halves at ties)",
                     {case2("broadcast [3, 4], [4]", registry::real({3, 4}), registry::real({4}),
                            [](const Tensor& a, const Tensor& b) { return minimum(a, b); }),
                      case2("broadcast [5], [2, 1]", registry::real({5}), registry::real({2, 1}),
                            [](const Tensor& a, const Tensor& b) { return minimum(a, b); })}});

// d where(c, a, b) = [c] da + [!c] db
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_defined("where", condition);
  check_defined("where", a);
  check_defined("where", b);
  if (condition.dtype() != DType::b8)
    throw std::invalid_argument(std::string("plateau: where: the condition must be a bool tensor, got ") +
                                dtype_name(condition.dtype()) + " " + condition.shape().str() +
                                "; build it with a comparison such as gt(x, 0.0)");
  check_same_dtype("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = empty(shape, a.dtype(), a.device());
  kernels::where(condition, a, b, y);
  if (autograd::should_record({&a, &b}))
    record_elementwise("where", {condition, a, b}, {&y}, {condition}, [](BackwardContext& c) -> TensorList {
      Tensor cond = c.saved(0);
      const Tensor& g = c.grad();
      Tensor zero = scalar_like(g, 0.0);
      return {Tensor(), c.needs_input_grad(1) ? where(cond, g, zero) : Tensor(),
              c.needs_input_grad(2) ? where(cond, zero, g) : Tensor()};
    });
  return y;
}
PLATEAU_REGISTER_OP({"where",
                     "d where(c, a, b) = [c] da + [not c] db",
                     {{"broadcast [3, 4], [3, 4], [4]",
                       {registry::mask({3, 4}), registry::real({3, 4}), registry::real({4})},
                       [](const TensorList& in) -> TensorList { return {where(in[0], in[1], in[2])}; }},
                      {"condition [4], a [2, 1], b [2, 4]",
                       {registry::mask({4}), registry::real({2, 1}), registry::real({2, 4})},
                       [](const TensorList& in) -> TensorList { return {where(in[0], in[1], in[2])}; }}}});

}  // namespace plateau
