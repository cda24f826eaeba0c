#include "core/ops/linalg.h"

#include <stdexcept>

#include "core/autograd/function.h"
#include "core/autograd/grad_mode.h"
#include "core/autograd/per_example.h"
#include "core/autograd/registry.h"
#include "core/backend/cpu/loops.h"  // broadcast_strides
#include "core/backend/kernels.h"
#include "core/ops/ops.h"
#include "core/threads.h"

namespace plateau {

namespace {

// A matrix operand as gemm wants it: row-major with a row stride, or transposed.
struct MatrixLayout {
  bool transposed;
  int64_t ld;
};

// How the last two dims of t can be read without a copy, if they can.
bool layout_of(const Tensor& t, MatrixLayout& layout) {
  int64_t r = t.dim();
  int64_t rows = t.shape()[r - 2], cols = t.shape()[r - 1];
  int64_t s0 = t.strides()[r - 2], s1 = t.strides()[r - 1];
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return layout = {false, s0}, true;
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return layout = {true, s1}, true;
  return false;
}

// Strides of t [..., rows, cols] broadcast to [batch..., rows, cols]: the batch dims' strides come
// first (0 where t has size 1 or lacks the dim).
Shape batch_strides(const Tensor& t, Shape batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return cpu::broadcast_strides(t, batch);
}

// Batched product of a [..., m, k] and b [..., k, n] with broadcast batch dims (both rank >= 2).
Tensor matmul_kernel(Tensor a, Tensor b) {
  int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1], n = b.shape()[b.dim() - 1];
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul (batch dims)");
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = empty(out_shape, a.dtype(), a.device());
  MatrixLayout la, lb;
  if (!layout_of(a, la)) a = a.contiguous(), layout_of(a, la);
  if (!layout_of(b, lb)) b = b.contiguous(), layout_of(b, lb);
  int64_t batches = batch.numel();
  Shape sa = batch_strides(a, batch, m, k), sb = batch_strides(b, batch, k, n);
  auto offset_of = [&](const Shape& strides, int64_t index) {
    int64_t off = 0;
    for (int64_t d = batch.size() - 1; d >= 0; --d) {
      off += (index % batch[d]) * strides[d];
      index /= batch[d];
    }
    return off;
  };
  // One strided-batched call when each operand's matrices are evenly spaced (contiguous batches, or
  // one matrix broadcast to all); otherwise one call per batch entry.
  int64_t step_a = batches > 1 ? offset_of(sa, 1) : 0, step_b = batches > 1 ? offset_of(sb, 1) : 0;
  bool even = true;
  for (int64_t i = 0; even && i < batches; ++i) even = offset_of(sa, i) == i * step_a && offset_of(sb, i) == i * step_b;
  size_t elem = element_size(a.dtype());
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  char* pc = static_cast<char*>(out.raw_data());
  if (even) {
    kernels::gemm_batched(a.dtype(), a.device(), la.transposed, lb.transposed, m, n, k, pa, la.ld, step_a, pb, lb.ld,
                          step_b, pc, n, m * n, batches);
  } else {
    for (int64_t i = 0; i < batches; ++i)
      kernels::gemm_batched(a.dtype(), a.device(), la.transposed, lb.transposed, m, n, k, pa + offset_of(sa, i) * elem,
                            la.ld, 0, pb + offset_of(sb, i) * elem, lb.ld, 0, pc + i * m * n * elem, n, 0, 1);
  }
  return out;
}

// True when the last two dims are stored column-major (a transpose of a contiguous matrix).
bool is_transposed(const Tensor& t) {
  int64_t r = t.dim();
  return t.shape()[r - 2] > 1 && t.shape()[r - 1] > 1 && t.strides()[r - 2] == 1 && t.strides()[r - 1] != 1;
}

void check_matmul(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string("plateau: ") + op + ": dtypes differ (" + dtype_name(a.dtype()) + " and " +
                                dtype_name(b.dtype()) + ")");
  if (a.device() != b.device())
    throw std::invalid_argument(std::string("plateau: ") + op + ": operands are on different devices, " +
                                a.device().str() + " and " + b.device().str() + "; move one with .to(device)");
  if (!a.is_floating_point())
    throw std::invalid_argument(std::string("plateau: ") + op + " needs floating tensors, got " +
                                dtype_name(a.dtype()));
  if (a.dim() == 0 || b.dim() == 0)
    throw std::invalid_argument(std::string("plateau: ") + op + " needs operands of rank >= 1, got shapes " +
                                a.shape().str() + " and " + b.shape().str());
  int64_t ka = a.shape().back(), kb = b.dim() == 1 ? b.shape()[0] : b.shape()[b.dim() - 2];
  if (ka != kb)
    throw std::invalid_argument(std::string("plateau: ") + op + ": shapes " + a.shape().str() + " and " +
                                b.shape().str() + " cannot be multiplied (" + std::to_string(ka) + " vs " +
                                std::to_string(kb) + ")");
}

// t [..., n] as a matrix [rows, n] (a view when t is 2-d or contiguous).
Tensor as_rows(const Tensor& t, int64_t n) { return t.dim() == 2 ? t : reshape(t, {-1, n}); }

using autograd::PerExampleGrad;
using autograd::PerExampleWant;

// [B, m, n]: a[b] ⊗ c[b] for each example b (not recorded: per-example results are plain tensors).
Tensor outer_per_example(const Tensor& a, const Tensor& c) {
  Tensor out = empty({a.size(0), a.size(1), c.size(1)}, a.dtype(), a.device());
  kernels::batched_outer(a, c, out);
  return out;
}

// Per example b: dW_b = Σ_t g_bt x_btᵀ, db_b = Σ_t g_bt, over the rows t of example b (one row for
// x [B, in]; T rows for a sequence x [B, T, in]). The squared norm of dW_b is ‖g_b‖²‖x_b‖² for one
// row; for T rows, Σ_st (x_bs·x_bt)(g_bs·g_bt) when that Gram form (T²·(in + out)) is cheaper than
// forming dW_b (T·in·out).
std::vector<PerExampleGrad> linear_per_example(autograd::BackwardContext& c, const std::vector<PerExampleWant>& want) {
  Tensor x = c.saved(0), w = c.saved(1);
  const Tensor& g = c.grad();
  if (x.dim() < 2)
    throw std::invalid_argument("plateau: per_example_grads: linear on a 1-d input " + x.shape().str() +
                                " has no example dimension");
  const int64_t batch = x.size(0), in = w.size(1), out = w.size(0);
  std::vector<PerExampleGrad> r(3);
  if (want[0] != PerExampleWant::none) r[0] = {matmul(g, w), false};
  const bool one_row = x.dim() == 2;
  Tensor xs = one_row ? x : reshape(x, {batch, -1, in});  // [B, T, in]
  Tensor gs = one_row ? g : reshape(g, {batch, -1, out});
  if (want[1] == PerExampleWant::sq_norm && one_row) {
    r[1] = {sum(g * g, {1}) * sum(x * x, {1}), true};
  } else if (want[1] == PerExampleWant::sq_norm && xs.size(1) * (in + out) < in * out) {
    r[1] = {sum(matmul(xs, transpose(xs, 1, 2)) * matmul(gs, transpose(gs, 1, 2)), {1, 2}), true};
  } else if (want[1] != PerExampleWant::none) {
    Tensor dw = one_row ? outer_per_example(g, x) : matmul(transpose(gs, 1, 2), xs);
    r[1] = {want[1] == PerExampleWant::sq_norm ? autograd::squared_norms(dw) : dw, true};
  }
  if (want[2] != PerExampleWant::none) {
    Tensor db = one_row ? g : sum(gs, {1});
    r[2] = {want[2] == PerExampleWant::sq_norm ? autograd::squared_norms(db) : db, true};
  }
  return r;
}

// Per example, for an operand shared by every example: its gradient before the sum over the
// examples (Aᵀg or g Bᵀ with the batch dims kept), summed over the dims it was broadcast along.
std::vector<PerExampleGrad> matmul_per_example(autograd::BackwardContext& c, const std::vector<PerExampleWant>& want) {
  Tensor a = c.saved(0), b = c.saved(1);
  const Tensor& g = c.grad();
  const int64_t batch = g.size(0), rank = g.dim();
  auto finish = [&](Tensor per_example, PerExampleWant w) -> PerExampleGrad {
    return {w == PerExampleWant::sq_norm ? autograd::squared_norms(per_example) : per_example, true};
  };
  std::vector<PerExampleGrad> r(2);
  if (rank == 2) {
    // a [B, k] holds one row per example; b [k, n] is contracted over its rows, shared.
    if (want[0] != PerExampleWant::none) r[0] = {matmul(g, transpose(b, 0, 1)), false};
    if (want[1] != PerExampleWant::none) r[1] = finish(outer_per_example(a, g), want[1]);
    return r;
  }
  auto batched = [&](const Tensor& t) { return t.dim() == rank && t.size(0) == batch; };
  if (want[0] != PerExampleWant::none) {
    Tensor full = matmul(g, transpose(b, -1, -2));
    r[0] = batched(a) ? PerExampleGrad{full, false} : finish(autograd::sum_to_example_shape(full, a.shape()), want[0]);
  }
  if (want[1] != PerExampleWant::none) {
    Tensor full = matmul(transpose(a, -1, -2), g);
    r[1] = batched(b) ? PerExampleGrad{full, false} : finish(autograd::sum_to_example_shape(full, b.shape()), want[1]);
  }
  return r;
}

}  // namespace

// d(AB) = dA·B + A·dB: grad_a = g·Bᵀ, grad_b = Aᵀ·g (batch broadcasting undone by the engine).
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_matmul(a, b, "matmul");
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), Shape{});
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  Tensor out = matmul_kernel(a, b);
  if (autograd::should_record({&a, &b}))
    autograd::record("matmul", {a, b}, {&out}, {a, b}, [](autograd::BackwardContext& c) -> TensorList {
      Tensor a = c.saved(0), b = c.saved(1), g = c.grad();
      // Each gradient is produced in its operand's memory layout: for a transposed operand (linear's
      // Wᵀ) compute (gradᵀ)ᵀ, so the gradient is contiguous again once transposed back to W.
      Tensor ga, gb;
      if (c.needs_input_grad(0))
        ga = is_transposed(a) ? transpose(matmul(b, transpose(g, -1, -2)), -1, -2) : matmul(g, transpose(b, -1, -2));
      if (c.needs_input_grad(1))
        gb = is_transposed(b) ? transpose(matmul(transpose(g, -1, -2), a), -1, -2) : matmul(transpose(a, -1, -2), g);
      return {ga, gb};
    }).per_example(matmul_per_example);
  return out;
}

PLATEAU_REGISTER_OP({"matmul",
                     "d(AB) = dA B + A dB",
                     {{"2-d",
                       {registry::real({3, 4}), registry::real({4, 2})},
                       [](const TensorList& in) -> TensorList { return {matmul(in[0], in[1])}; }},
                      {"batched, broadcast batch",
                       {registry::real({2, 1, 3, 4}), registry::real({3, 4, 2})},
                       [](const TensorList& in) -> TensorList { return {matmul(in[0], in[1])}; }},
                      {"vector operands",
                       {registry::real({4}), registry::real({2, 4, 3}), registry::real({3})},
                       [](const TensorList& in) -> TensorList {
                         return {matmul(in[0], in[1]), matmul(in[1], in[2]), matmul(in[0], in[0])};
                       }}}});

// outer(a, b)[i, j] = a[i] b[j]
Tensor outer(const Tensor& a, const Tensor& b) {
  if (a.dim() != 1 || b.dim() != 1)
    throw std::invalid_argument("plateau: outer needs two 1-d tensors, got shapes " + a.shape().str() + " and " +
                                b.shape().str());
  return matmul(unsqueeze(a, 1), unsqueeze(b, 0));
}

PLATEAU_REGISTER_OP({"outer",
                     "d(a bᵀ) = da bᵀ + a dbᵀ",
                     {{"", {registry::real({3}), registry::real({4})}, [](const TensorList& in) -> TensorList {
                         return {outer(in[0], in[1])};
                       }}}});

// dot(a, b) = Σ a[i] b[i]
Tensor dot(const Tensor& a, const Tensor& b) {
  if (a.dim() != 1 || b.dim() != 1 || a.numel() != b.numel())
    throw std::invalid_argument("plateau: dot needs two 1-d tensors of equal length, got shapes " + a.shape().str() +
                                " and " + b.shape().str());
  return matmul(a, b);
}

PLATEAU_REGISTER_OP({"dot",
                     "d(a·b) = da·b + a·db",
                     {{"", {registry::real({5}), registry::real({5})}, [](const TensorList& in) -> TensorList {
                         return {dot(in[0], in[1])};
                       }}}});

// linear(x, W, b) = x Wᵀ + b
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dim() != 2)
    throw std::invalid_argument("plateau: linear needs a 2-d weight [out, in], got shape " + weight.shape().str());
  if (x.dim() == 0 || x.shape().back() != weight.shape()[1])
    throw std::invalid_argument("plateau: linear: input of shape " + x.shape().str() +
                                " does not match weight of shape " + weight.shape().str() + " (last dim must be " +
                                std::to_string(weight.shape()[1]) + ")");
  const int64_t in = weight.shape()[1], out = weight.shape()[0];
  if (x.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != weight.dtype()))
    throw std::invalid_argument(std::string("plateau: linear: input, weight and bias must share a dtype, got ") +
                                dtype_name(x.dtype()) + ", " + dtype_name(weight.dtype()) +
                                (bias.defined() ? std::string(", ") + dtype_name(bias.dtype()) : std::string()));
  if (bias.defined() && (bias.dim() != 1 || bias.numel() != out))
    throw std::invalid_argument("plateau: linear: bias must be [" + std::to_string(out) + "], got " +
                                bias.shape().str());
  if (!x.is_floating_point())
    throw std::invalid_argument(std::string("plateau: linear needs floating tensors, got ") + dtype_name(x.dtype()));
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 1] = out;
  // One node instead of transpose, matmul and add: the bias goes into the fresh output in place, and
  // the weight gradient comes out as gᵀx, already in W's layout. Inputs of any rank are multiplied
  // as one [rows, in] matrix, but the node keeps their shape, so per-example rules see the examples.
  Tensor y;
  {
    NoGradGuard no_grad;
    y = reshape(matmul_kernel(as_rows(x, in), transpose(weight, 0, 1)), out_shape);
    if (bias.defined()) add_(y, bias);
  }
  if (autograd::should_record({&x, &weight, &bias}))
    autograd::record("linear", {x, weight, bias}, {&y}, {x, weight}, [](autograd::BackwardContext& c) -> TensorList {
      Tensor x = c.saved(0), w = c.saved(1);
      const int64_t in = w.size(1), out = w.size(0);
      Tensor g = as_rows(c.grad(), out);
      return {c.needs_input_grad(0) ? reshape(matmul(g, w), x.shape()) : Tensor(),
              c.needs_input_grad(1) ? matmul(transpose(g, 0, 1), as_rows(x, in)) : Tensor(),
              c.needs_input_grad(2) ? sum(g, {0}) : Tensor()};
    }).per_example(linear_per_example);
  return y;
}

PLATEAU_REGISTER_OP({"linear",
                     "dx = g W, dW = gᵀ x, db = Σ_rows g",
                     {{"with bias",
                       {registry::real({2, 3, 4}), registry::real({5, 4}), registry::real({5})},
                       [](const TensorList& in) -> TensorList { return {linear(in[0], in[1], in[2])}; }},
                      {"no bias",
                       {registry::real({3, 4}), registry::real({2, 4})},
                       [](const TensorList& in) -> TensorList { return {linear(in[0], in[1])}; }},
                      {"1-d input",
                       {registry::real({4}), registry::real({3, 4}), registry::real({3})},
                       [](const TensorList& in) -> TensorList { return {linear(in[0], in[1], in[2])}; }}}});

}  // namespace plateau
