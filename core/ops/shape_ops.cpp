// Shape ops. Views (view, reshape when possible, flatten, permute, transpose, expand,
// squeeze, unsqueeze, slice) are new TensorImpls on the same storage; the others copy through the
// kernels behind core/backend/kernels.h. Indexing ops are in indexing.cpp. Each op is followed by its registry entry.
#include "core/ops/shape_ops.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/backend/cuda/runtime.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using autograd::BackwardContext;
using namespace ops_detail;

namespace {

// A tensor on x's storage with its own shape, strides and offset (records nothing).
Tensor alias(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl()->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = x.dtype();
  return Tensor(std::move(impl));
}

// Records an op whose gradient is the output gradient reshaped to the input's shape.
void record_reshape_back(const char* name, const Tensor& x, Tensor& y) {
  if (!autograd::should_record({&x})) return;
  Shape in = x.shape();
  autograd::record(name, {x}, {&y}, {}, [in](BackwardContext& c) -> TensorList {
    return {reshape(c.grad(), in)};
  }).examples(rows_kept(x.dim() > 0 && y.dim() > 0 && x.size(0) == y.size(0)));
}

// Resolves one -1 in `shape` and checks the element count against the input's.
Shape infer_shape(const char* op, const Shape& in, const Shape& shape) {
  int64_t known = 1, infer = -1;
  for (int64_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) fail(std::string(op) + ": only one dimension of the shape " + shape.str() + " can be -1");
      infer = i;
    } else if (shape[i] < 0) {
      fail(std::string(op) + ": invalid size " + std::to_string(shape[i]) + " in shape " + shape.str());
    } else {
      known *= shape[i];
    }
  }
  Shape out = shape;
  if (infer >= 0) {
    if (known == 0 || in.numel() % known != 0)
      fail(std::string(op) + ": cannot infer the -1 in shape " + shape.str() + " for an input of shape " + in.str() +
           " (" + std::to_string(in.numel()) + " elements)");
    out[infer] = in.numel() / known;
  }
  if (out.numel() != in.numel())
    fail(std::string(op) + ": shape " + shape.str() + " (" + std::to_string(out.numel()) +
         " elements) is invalid for an input of shape " + in.str() + " (" + std::to_string(in.numel()) + " elements)");
  return out;
}

// Strides that let `shape` address memory laid out as (in, in_strides), when they exist. The input
// dims split into chunks that are each contiguous in memory; every chunk must be covered by whole
// new dims, which then get strides counted from the chunk's innermost stride.
std::optional<Shape> view_strides(const Shape& in, const Shape& in_strides, const Shape& shape) {
  if (in.size() == 0 || in.numel() == 0) return contiguous_strides(shape);
  Shape out = shape;
  int64_t nd = shape.size() - 1;  // next new dim to assign, from the innermost
  int64_t base = in_strides[in.size() - 1];
  int64_t chunk_numel = 1, view_numel = 1;
  for (int64_t d = in.size() - 1; d >= 0; --d) {
    chunk_numel *= in[d];
    bool chunk_ends = d == 0 || (in[d - 1] != 1 && in_strides[d - 1] != chunk_numel * base);
    if (!chunk_ends) continue;
    while (nd >= 0 && (view_numel < chunk_numel || shape[nd] == 1)) {
      out[nd] = view_numel * base;
      view_numel *= shape[nd];
      --nd;
    }
    if (view_numel != chunk_numel) return std::nullopt;
    if (d > 0) {
      base = in_strides[d - 1];
      chunk_numel = view_numel = 1;
    }
  }
  if (nd != -1) return std::nullopt;
  return out;
}

// Normalizes python-style slice bounds for a dim of size n: negatives count from the end, then
// both are clamped to [0, n] and end to at least start.
void normalize_bounds(int64_t n, int64_t& start, int64_t& end) {
  auto wrap = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  start = wrap(start);
  end = std::max(start, wrap(end));
}

}  // namespace

// view: y = x with a new shape on the same storage; dx = reshape(dy, x.shape).
Tensor view(const Tensor& x, const Shape& shape) {
  check_defined("view", x);
  Shape target = infer_shape("view", x.shape(), shape);
  std::optional<Shape> strides = view_strides(x.shape(), x.strides(), target);
  if (!strides)
    fail("view: shape " + target.str() + " is not compatible with the input's shape " + x.shape().str() +
         " and strides " + x.strides().str() + " without a copy; use reshape(), or call contiguous() first");
  Tensor y = alias(x, target, *strides, x.offset());
  record_reshape_back("view", x, y);
  return y;
}

PLATEAU_REGISTER_OP({"view",
                     "dx = reshape(dy, x.shape)",
                     {{"merge leading dims",
                       {registry::real({2, 3, 4})},
                       [](const TensorList& in) -> TensorList {
                         return {view(in[0], {6, 4})};
                       }},
                      {"split last dim, -1", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList {
                         return {view(in[0], {-1, 2, 2})};
                       }}}});

// reshape: a view when the strides allow one, else a copy; dx = reshape(dy, x.shape).
Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined("reshape", x);
  Shape target = infer_shape("reshape", x.shape(), shape);
  std::optional<Shape> strides = view_strides(x.shape(), x.strides(), target);
  Tensor y;
  if (strides) {
    y = alias(x, target, *strides, x.offset());
  } else {
    Tensor c = copy_of(x, x.dtype());
    y = alias(c, target, contiguous_strides(target), 0);
  }
  record_reshape_back("reshape", x, y);
  return y;
}

PLATEAU_REGISTER_OP(
    {"reshape",
     "dx = reshape(dy, x.shape)",
     {{"to 1-d", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList { return {reshape(in[0], {-1})}; }},
      {"of a transpose (copies)", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList {
         return {reshape(transpose(in[0], 0, 1), {2, 6})};
       }}}});

// flatten: dims start..end merged into one; dx = reshape(dy, x.shape).
Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  if (s > e)
    fail("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " + std::to_string(end_dim) +
         " for a tensor of shape " + x.shape().str());
  Shape shape;
  for (int64_t d = 0; d < s; ++d) shape.push_back(x.size(d));
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x.size(d);
  shape.push_back(merged);
  for (int64_t d = e + 1; d < x.dim(); ++d) shape.push_back(x.size(d));
  return reshape(x, shape);
}

PLATEAU_REGISTER_OP(
    {"flatten",
     "dx = reshape(dy, x.shape)",
     {{"all", {registry::real({2, 3, 2})}, [](const TensorList& in) -> TensorList { return {flatten(in[0])}; }},
      {"dims 1..-1", {registry::real({2, 3, 2})}, [](const TensorList& in) -> TensorList {
         return {flatten(in[0], 1, -1)};
       }}}});

// permute: y[i_p0, i_p1, ...] = x[i_0, i_1, ...]; dx = permute(dy, inverse(p)).
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  check_defined("permute", x);
  if (static_cast<int64_t>(dims.size()) != x.dim())
    fail("permute: got " + std::to_string(dims.size()) + " dims " + list_str(dims) + " for a tensor of rank " +
         std::to_string(x.dim()) + " (shape " + x.shape().str() + "); give one entry per dim");
  Shape shape, strides;
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    if (inverse[d] >= 0) fail("permute: dim " + std::to_string(d) + " appears twice in " + list_str(dims));
    inverse[d] = static_cast<int64_t>(i);
    shape.push_back(x.size(d));
    strides.push_back(x.strides()[d]);
  }
  Tensor y = alias(x, shape, strides, x.offset());
  if (autograd::should_record({&x}))
    autograd::record("permute", {x}, {&y}, {}, [inverse](BackwardContext& c) -> TensorList {
      return {permute(c.grad(), inverse)};
    }).examples(rows_kept(inverse[0] == 0));
  return y;
}

PLATEAU_REGISTER_OP({"permute",
                     "dx = permute(dy, inverse permutation)",
                     {{"3-d, negative dims", {registry::real({2, 3, 4})}, [](const TensorList& in) -> TensorList {
                         return {permute(in[0], {-1, 0, 1})};
                       }}}});

// transpose: swaps two dims; dx = transpose(dy, dim0, dim1).
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  check_defined("transpose", x);
  if (x.dim() == 0) return view(x, {});
  int64_t a = wrap_dim(dim0, x.dim(), "transpose"), b = wrap_dim(dim1, x.dim(), "transpose");
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  Tensor y = alias(x, shape, strides, x.offset());
  if (autograd::should_record({&x}))
    autograd::record("transpose", {x}, {&y}, {}, [a, b](BackwardContext& c) -> TensorList {
      return {transpose(c.grad(), a, b)};
    }).examples(rows_kept(a != 0 && b != 0));
  return y;
}

PLATEAU_REGISTER_OP(
    {"transpose",
     "dx = transpose(dy, dim0, dim1)",
     {{"2-d", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList { return {transpose(in[0], 0, 1)}; }},
      {"3-d, negative dim", {registry::real({2, 3, 2})}, [](const TensorList& in) -> TensorList {
         return {transpose(in[0], -1, 0)};
       }}}});

// expand: size-1 dims (and new leading dims) repeat with stride 0; dx = sum_to_shape(dy, x.shape).
Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  int64_t lead = shape.size() - x.dim();
  if (lead < 0)
    fail("expand: the target shape " + shape.str() + " has fewer dims than the input's shape " + x.shape().str());
  Shape out, strides;
  for (int64_t i = 0; i < shape.size(); ++i) {
    int64_t want = shape[i];
    if (i < lead) {
      if (want < 0)
        fail("expand: -1 is not allowed for the new leading dim " + std::to_string(i) + " of " + shape.str());
      out.push_back(want);
      strides.push_back(0);
      continue;
    }
    int64_t have = x.size(i - lead);
    if (want == -1 || want == have) {
      out.push_back(have);
      strides.push_back(x.strides()[i - lead]);
    } else if (have == 1 && want >= 0) {
      out.push_back(want);
      strides.push_back(0);
    } else {
      fail("expand: cannot expand shape " + x.shape().str() + " to " + shape.str() + ": dim " + std::to_string(i) +
           " has size " + std::to_string(have) + " (only size-1 dims can be expanded)");
    }
  }
  Tensor y = alias(x, out, strides, x.offset());
  // The engine sums the gradient back to x's shape, as for any broadcasting op (per_example_grads
  // needs it unsummed when x is shared by all examples).
  if (autograd::should_record({&x}))
    autograd::record("expand", {x}, {&y}, {}, [](BackwardContext& c) -> TensorList {
      return {c.grad()};
    }).examples(autograd::ExampleMap::elementwise);
  return y;
}

PLATEAU_REGISTER_OP({"expand",
                     "dx = sum_to_shape(dy, x.shape)",
                     {{"size-1 dim and new leading dim",
                       {registry::real({3, 1})},
                       [](const TensorList& in) -> TensorList {
                         return {expand(in[0], {2, 3, 4})};
                       }},
                      {"-1 keeps a dim", {registry::real({1, 4})}, [](const TensorList& in) -> TensorList {
                         return {expand(in[0], {3, -1})};
                       }}}});

// squeeze: drops dim when its size is 1 (else returns x's shape unchanged, as libtorch);
// dx = reshape(dy, x.shape).
Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined("squeeze", x);
  if (x.dim() == 0) {
    wrap_dim(dim, 0, "squeeze");
    return view(x, {});
  }
  int64_t d = wrap_dim(dim, x.dim(), "squeeze");
  Shape shape = x.shape(), strides = x.strides();
  if (shape[d] == 1) {
    shape.erase(d);
    strides.erase(d);
  }
  Tensor y = alias(x, shape, strides, x.offset());
  record_reshape_back("squeeze", x, y);
  return y;
}

// squeeze: drops every size-1 dim.
Tensor squeeze(const Tensor& x) {
  check_defined("squeeze", x);
  Shape shape, strides;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.size(d) != 1) shape.push_back(x.size(d)), strides.push_back(x.strides()[d]);
  Tensor y = alias(x, shape, strides, x.offset());
  record_reshape_back("squeeze", x, y);
  return y;
}

PLATEAU_REGISTER_OP({"squeeze",
                     "dx = reshape(dy, x.shape)",
                     {{"one dim, negative",
                       {registry::real({3, 1, 4})},
                       [](const TensorList& in) -> TensorList { return {squeeze(in[0], -2)}; }},
                      {"all size-1 dims", {registry::real({1, 3, 1, 2})}, [](const TensorList& in) -> TensorList {
                         return {squeeze(in[0])};
                       }}}});

// unsqueeze: inserts a size-1 dim at position dim (of the result); dx = reshape(dy, x.shape).
Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined("unsqueeze", x);
  int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  int64_t stride = d < x.dim() ? x.size(d) * x.strides()[d] : 1;
  shape.insert(d, 1);
  strides.insert(d, stride);
  Tensor y = alias(x, shape, strides, x.offset());
  record_reshape_back("unsqueeze", x, y);
  return y;
}

PLATEAU_REGISTER_OP(
    {"unsqueeze",
     "dx = reshape(dy, x.shape)",
     {{"middle", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList { return {unsqueeze(in[0], 1)}; }},
      {"last, negative", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList {
         return {unsqueeze(in[0], -1)};
       }}}});

// slice: y = x[start:end:step] along dim (a view); dx = slice_backward(dy, ...).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined("slice", x);
  if (x.dim() == 0) fail("slice: cannot slice a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "slice");
  if (step <= 0) fail("slice: step must be positive, got " + std::to_string(step));
  normalize_bounds(x.size(d), start, end);
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor y = alias(x, shape, strides, x.offset() + start * x.strides()[d]);
  if (autograd::should_record({&x})) {
    Shape in = x.shape();
    autograd::record("slice", {x}, {&y}, {}, [in, d, start, end, step](BackwardContext& c) -> TensorList {
      return {slice_backward(c.grad(), in, d, start, end, step)};
    }).examples(along_dim(d));
  }
  return y;
}

PLATEAU_REGISTER_OP({"slice",
                     "dx = slice_backward(dy): dy at the sliced positions, 0 elsewhere",
                     {{"step 2, dim 1",
                       {registry::real({3, 7})},
                       [](const TensorList& in) -> TensorList { return {slice(in[0], 1, 1, 6, 2)}; }},
                      {"negative bounds, end past the size",
                       {registry::real({5, 2})},
                       [](const TensorList& in) -> TensorList { return {slice(in[0], 0, -4, 100)}; }}}});

// slice_backward: zeros of input_shape with g at the sliced positions; dg = slice(dy, ...).
Tensor slice_backward(const Tensor& g, const Shape& input_shape, int64_t dim, int64_t start, int64_t end,
                      int64_t step) {
  check_defined("slice_backward", g);
  if (input_shape.size() == 0) fail("slice_backward: input_shape is 0-d");
  int64_t d = wrap_dim(dim, input_shape.size(), "slice_backward");
  if (step <= 0) fail("slice_backward: step must be positive, got " + std::to_string(step));
  normalize_bounds(input_shape[d], start, end);
  Shape expected = input_shape;
  expected[d] = (end - start + step - 1) / step;
  if (g.shape() != expected)
    fail("slice_backward: gradient of shape " + g.shape().str() + " does not match the slice shape " + expected.str() +
         " of input shape " + input_shape.str());
  Tensor out = zeros(input_shape, g.dtype(), g.device());
  Shape strides = out.strides();
  strides[d] *= step;
  kernels::copy(g, alias(out, expected, strides, start * out.strides()[d]));
  if (autograd::should_record({&g}))
    autograd::record("slice_backward", {g}, {&out}, {}, [d, start, end, step](BackwardContext& c) -> TensorList {
      return {slice(c.grad(), d, start, end, step)};
    }).examples(along_dim(d));
  return out;
}

PLATEAU_REGISTER_OP({"slice_backward",
                     "dg = slice(dy, dim, start, end, step)",
                     {{"step 3", {registry::real({2, 3})}, [](const TensorList& in) -> TensorList {
                         return {slice_backward(in[0], {2, 8}, 1, 1, 8, 3)};
                       }}}});

// cat: y = [x_0; x_1; ...] along dim; dx_i = slice(dy, dim, offset_i, offset_i + size_i).
Tensor cat(const TensorList& tensors, int64_t dim) {
  if (tensors.empty()) fail("cat: needs at least one tensor");
  for (const Tensor& t : tensors) check_defined("cat", t);
  const Tensor& first = tensors[0];
  if (first.dim() == 0) fail("cat: cannot concatenate 0-d tensors; unsqueeze them or use stack()");
  int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.dtype() != first.dtype())
      fail("cat: tensor " + std::to_string(i) + " is " + dtype_name(t.dtype()) + " but tensor 0 is " +
           dtype_name(first.dtype()) + "; convert with to_dtype first");
    bool same = t.dim() == first.dim();
    for (int64_t k = 0; same && k < t.dim(); ++k) same = k == d || t.size(k) == first.size(k);
    if (!same)
      fail("cat: tensor " + std::to_string(i) + " has shape " + t.shape().str() + " but tensor 0 has shape " +
           first.shape().str() + "; all sizes must match except along dim " + std::to_string(d));
    offsets.push_back(total);
    total += t.size(d);
  }
  shape[d] = total;
  Tensor out = empty(shape, first.dtype(), first.device());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Shape part = shape;
    part[d] = tensors[i].size(d);
    kernels::copy(tensors[i], alias(out, part, out.strides(), offsets[i] * out.strides()[d]));
  }
  if (autograd::should_record(tensors)) {
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors) sizes.push_back(t.size(d));
    autograd::record("cat", tensors, {&out}, {}, [d, offsets, sizes](BackwardContext& c) -> TensorList {
      TensorList grads(offsets.size());
      for (size_t i = 0; i < offsets.size(); ++i)
        if (c.needs_input_grad(i)) grads[i] = slice(c.grad(), d, offsets[i], offsets[i] + sizes[i]);
      return grads;
    }).examples(along_dim(d));
  }
  return out;
}

PLATEAU_REGISTER_OP({"cat",
                     "dx_i = slice(dy, dim, offset_i, offset_i + size_i)",
                     {{"three along dim 1",
                       {registry::real({2, 3}), registry::real({2, 1}), registry::real({2, 2})},
                       [](const TensorList& in) -> TensorList { return {cat(in, 1)}; }},
                      {"negative dim",
                       {registry::real({2, 2, 3}), registry::real({1, 2, 3})},
                       [](const TensorList& in) -> TensorList { return {cat(in, -3)}; }}}});

// stack: cat of the inputs each unsqueezed at dim (a composite).
Tensor stack(const TensorList& tensors, int64_t dim) {
  if (tensors.empty()) fail("stack: needs at least one tensor");
  for (const Tensor& t : tensors) check_defined("stack", t);
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  TensorList parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape())
      fail("stack: tensor " + std::to_string(i) + " has shape " + tensors[i].shape().str() + " but tensor 0 has " +
           tensors[0].shape().str() + "; stacked tensors must have the same shape");
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

PLATEAU_REGISTER_OP({"stack",
                     "dx_i = select(dy, dim, i) (through unsqueeze and cat)",
                     {{"two at dim 1",
                       {registry::real({2, 3}), registry::real({2, 3})},
                       [](const TensorList& in) -> TensorList { return {stack(in, 1)}; }},
                      {"three at the end",
                       {registry::real({3}), registry::real({3}), registry::real({3})},
                       [](const TensorList& in) -> TensorList { return {stack(in, -1)}; }}}});

// pad: constant padding, pads = {last_before, last_after, second_last_before, ...};
// dx = dy sliced back to x's region.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  check_defined("pad", x);
  if (pads.size() % 2 != 0 || static_cast<int64_t>(pads.size()) > 2 * x.dim())
    fail("pad: pads " + list_str(pads) + " must have an even length of at most 2 * rank = " +
         std::to_string(2 * x.dim()) + " for a tensor of shape " + x.shape().str());
  for (int64_t p : pads)
    if (p < 0) fail("pad: negative padding " + list_str(pads) + " is not supported; use slice() to crop");
  Shape shape = x.shape();
  int64_t offset = 0;
  std::vector<int64_t> before(x.dim(), 0);
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    int64_t d = x.dim() - 1 - static_cast<int64_t>(k);
    before[d] = pads[2 * k];
    shape[d] += pads[2 * k] + pads[2 * k + 1];
  }
  Tensor out = full(shape, value, x.dtype(), x.device());
  for (int64_t d = 0; d < x.dim(); ++d) offset += before[d] * out.strides()[d];
  kernels::copy(x, alias(out, x.shape(), out.strides(), offset));
  if (autograd::should_record({&x})) {
    Shape in = x.shape();
    autograd::record("pad", {x}, {&out}, {}, [in, before](BackwardContext& c) -> TensorList {
      Tensor g = c.grad();
      for (int64_t d = 0; d < in.size(); ++d)
        if (g.size(d) != in[d]) g = slice(g, d, before[d], before[d] + in[d]);
      return {g};
    }).examples(rows_kept(out.size(0) == x.size(0)));
  }
  return out;
}

PLATEAU_REGISTER_OP({"pad",
                     "dx = dy sliced to x's region",
                     {{"last two dims",
                       {registry::real({2, 3, 2})},
                       [](const TensorList& in) -> TensorList {
                         return {pad(in[0], {1, 2, 0, 1}, 0.5)};
                       }},
                      {"last dim only", {registry::real({4})}, [](const TensorList& in) -> TensorList {
                         return {pad(in[0], {2, 1})};
                       }}}});

// clone: a contiguous copy; dx = dy.
Tensor clone(const Tensor& x) {
  check_defined("clone", x);
  Tensor out = copy_of(x, x.dtype());
  if (autograd::should_record({&x}))
    autograd::record("clone", {x}, {&out}, {}, [](BackwardContext& c) -> TensorList {
      return {c.grad()};
    }).examples(autograd::ExampleMap::elementwise);
  return out;
}

PLATEAU_REGISTER_OP({"clone", "dx = dy", {{"", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList {
                                             return {clone(in[0])};
                                           }}}});

// to_dtype: converts each element; between floating types dx = to_dtype(dy, x.dtype).
Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined("to_dtype", x);
  Tensor out = copy_of(x, dtype);
  if (is_floating(dtype) && autograd::should_record({&x})) {
    DType in = x.dtype();
    autograd::record("to_dtype", {x}, {&out}, {}, [in](BackwardContext& c) -> TensorList {
      return {to_dtype(c.grad(), in)};
    }).examples(autograd::ExampleMap::elementwise);
  }
  return out;
}

// to_device: the same values on another device; dx = to_device(dy, x.device).
Tensor to_device(const Tensor& x, Device device) {
  check_defined("to_device", x);
  if (x.device() == device) return x;
  Tensor out = empty(x.shape(), x.dtype(), device);
  kernels::copy(x, out);
  if (x.is_floating_point() && autograd::should_record({&x})) {
    Device from = x.device();
    autograd::record("to_device", {x}, {&out}, {}, [from](BackwardContext& c) -> TensorList {
      return {to_device(c.grad(), from)};
    }).examples(autograd::ExampleMap::elementwise);
  }
  return out;
}

PLATEAU_REGISTER_OP({"to_device",
                     "dx = to_device(dy, x.device)",
                     {{"round trip through cuda:0 when a device is present",
                       {registry::real({3, 4})},
                       [](const TensorList& in) -> TensorList {
                         Device there = cuda::is_available() ? Device::cuda(0) : Device::cpu();
                         return {to_device(to_device(in[0], there), in[0].device())};
                       }}}});

PLATEAU_REGISTER_OP({"to_dtype",
                     "dx = to_dtype(dy, x.dtype)",
                     {{"same dtype (copy)", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList {
                         return {to_dtype(in[0], in[0].dtype())};
                       }}}});

}  // namespace plateau
