// Indexing ops: index_select / index_add, gather / scatter_add (each pair the other's gradient),
// masked_fill and one_hot, through the kernels in core/backend/cpu/index.h.
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using autograd::BackwardContext;
using namespace ops_detail;

namespace {

// Index tensors are i64 and in [0, size): the error names the op, the dim, the value and where it is.
void check_index(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  check_defined(op, index);
  if (index.dtype() != DType::i64)
    fail(std::string(op) + ": indices must be i64, got " + dtype_name(index.dtype()) + "; convert with to_dtype");
  kernels::BadIndex bad = kernels::find_out_of_range(index, size);
  if (bad.position >= 0)
    throw std::out_of_range(std::string("plateau: ") + op + ": index " + std::to_string(bad.value) + " at position " +
                            std::to_string(bad.position) + " is out of range for dim " + std::to_string(dim) +
                            " of size " + std::to_string(size) + " (valid: 0 to " + std::to_string(size - 1) + ")");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b, const char* what) {
  if (a.dtype() != b.dtype())
    fail(std::string(op) + ": " + what + " is " + dtype_name(b.dtype()) + " but self is " + dtype_name(a.dtype()));
}

}  // namespace

// index_select: y[.., i, ..] = x[.., index[i], ..]; dx = index_add(zeros, dim, index, dy).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("index_select", x);
  if (x.dim() == 0) fail("index_select: x must have at least one dim");
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  check_defined("index_select", index);
  if (index.dim() > 1) fail("index_select: index must be 1-d, got shape " + index.shape().str());
  check_index("index_select", index, d, x.size(d));
  Shape shape = x.shape();
  shape[d] = index.numel();
  Tensor out = empty(shape, x.dtype(), x.device());
  kernels::index_select(x, d, index, out);
  if (autograd::should_record({&x})) {
    Shape in = x.shape();
    autograd::record("index_select", {x, index}, {&out}, {index}, [in, d](BackwardContext& c) -> TensorList {
      return {index_add(zeros(in, c.grad().dtype(), c.grad().device()), d, c.saved(0), c.grad()), Tensor()};
    }).examples(along_dim(d));
  }
  return out;
}

PLATEAU_REGISTER_OP({"index_select",
                     "dx = index_add(zeros_like(x), dim, index, dy)",
                     {{"dim 0, repeated indices",
                       {registry::real({4, 3}), registry::index({6}, 4)},
                       [](const TensorList& in) -> TensorList { return {index_select(in[0], 0, in[1])}; }},
                      {"dim -1",
                       {registry::real({2, 5}), registry::index({3}, 5)},
                       [](const TensorList& in) -> TensorList { return {index_select(in[0], -1, in[1])}; }}}});

// index_add: y = self with source[.., i, ..] added at [.., index[i], ..];
// dself = dy, dsource = index_select(dy, dim, index).
Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  check_defined("index_add", self);
  check_defined("index_add", source);
  check_defined("index_add", index);
  if (self.dim() == 0) fail("index_add: self must have at least one dim");
  int64_t d = wrap_dim(dim, self.dim(), "index_add");
  if (index.dim() > 1) fail("index_add: index must be 1-d, got shape " + index.shape().str());
  check_same_dtype("index_add", self, source, "source");
  Shape expected = self.shape();
  expected[d] = index.numel();
  if (source.shape() != expected)
    fail("index_add: source has shape " + source.shape().str() + " but self " + self.shape().str() + " and " +
         std::to_string(index.numel()) + " indices along dim " + std::to_string(d) + " need " + expected.str());
  check_index("index_add", index, d, self.size(d));
  Tensor out = copy_of(self, self.dtype());
  kernels::index_add(out, d, index, source);
  if (autograd::should_record({&self, &source}))
    autograd::record("index_add", {self, index, source}, {&out}, {index}, [d](BackwardContext& c) -> TensorList {
      return {c.needs_input_grad(0) ? c.grad() : Tensor(), Tensor(),
              c.needs_input_grad(2) ? index_select(c.grad(), d, c.saved(0)) : Tensor()};
    }).examples(along_dim(d));
  return out;
}

PLATEAU_REGISTER_OP({"index_add",
                     "dself = dy, dsource = index_select(dy, dim, index)",
                     {{"dim 1, repeated indices",
                       {registry::real({3, 4}), registry::index({5}, 4), registry::real({3, 5})},
                       [](const TensorList& in) -> TensorList { return {index_add(in[0], 1, in[1], in[2])}; }}}});

// gather: y[p] = x[p with coordinate dim replaced by index[p]]; dx = scatter_add(zeros, dim, index, dy).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("gather", x);
  check_defined("gather", index);
  if (x.dim() == 0) fail("gather: x must have at least one dim");
  int64_t d = wrap_dim(dim, x.dim(), "gather");
  if (index.dim() != x.dim())
    fail("gather: index of shape " + index.shape().str() + " must have as many dims as x of shape " + x.shape().str());
  for (int64_t k = 0; k < x.dim(); ++k)
    if (k != d && index.size(k) > x.size(k))
      fail("gather: index of shape " + index.shape().str() + " is larger than x of shape " + x.shape().str() +
           " in dim " + std::to_string(k));
  check_index("gather", index, d, x.size(d));
  Tensor out = empty(index.shape(), x.dtype(), x.device());
  kernels::gather(x, d, index, out);
  if (autograd::should_record({&x})) {
    Shape in = x.shape();
    autograd::record("gather", {x, index}, {&out}, {index}, [in, d](BackwardContext& c) -> TensorList {
      return {scatter_add(zeros(in, c.grad().dtype(), c.grad().device()), d, c.saved(0), c.grad()), Tensor()};
    }).examples(along_dim(d));
  }
  return out;
}

PLATEAU_REGISTER_OP({"gather",
                     "dx = scatter_add(zeros_like(x), dim, index, dy)",
                     {{"dim 1",
                       {registry::real({3, 4}), registry::index({3, 5}, 4)},
                       [](const TensorList& in) -> TensorList { return {gather(in[0], 1, in[1])}; }},
                      {"dim 0, smaller index",
                       {registry::real({3, 4}), registry::index({2, 2}, 3)},
                       [](const TensorList& in) -> TensorList { return {gather(in[0], 0, in[1])}; }}}});

// scatter_add: y = self with src[p] added at (p with coordinate dim replaced by index[p]);
// dself = dy, dsrc = gather(dy, dim, index) (zero-padded where src is larger than index).
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  check_defined("scatter_add", self);
  check_defined("scatter_add", index);
  check_defined("scatter_add", src);
  if (self.dim() == 0) fail("scatter_add: self must have at least one dim");
  int64_t d = wrap_dim(dim, self.dim(), "scatter_add");
  check_same_dtype("scatter_add", self, src, "src");
  if (index.dim() != self.dim() || src.dim() != self.dim())
    fail("scatter_add: self " + self.shape().str() + ", index " + index.shape().str() + " and src " +
         src.shape().str() + " must have the same number of dims");
  for (int64_t k = 0; k < self.dim(); ++k)
    if (index.size(k) > src.size(k) || (k != d && index.size(k) > self.size(k)))
      fail("scatter_add: index of shape " + index.shape().str() + " is larger than src " + src.shape().str() +
           " or self " + self.shape().str() + " in dim " + std::to_string(k));
  check_index("scatter_add", index, d, self.size(d));
  Tensor out = copy_of(self, self.dtype());
  kernels::scatter_add(out, d, index, src);
  if (autograd::should_record({&self, &src})) {
    Shape src_shape = src.shape();
    autograd::record("scatter_add", {self, index, src}, {&out}, {index},
                     [d, src_shape](BackwardContext& c) -> TensorList {
                       Tensor gsrc;
                       if (c.needs_input_grad(2)) {
                         Tensor index = c.saved(0);
                         gsrc = gather(c.grad(), d, index);
                         if (index.shape() != src_shape) {
                           std::vector<int64_t> pads;
                           for (int64_t k = src_shape.size() - 1; k >= 0; --k)
                             pads.insert(pads.end(), {0, src_shape[k] - index.size(k)});
                           gsrc = pad(gsrc, pads);
                         }
                       }
                       return {c.needs_input_grad(0) ? c.grad() : Tensor(), Tensor(), gsrc};
                     })
        .examples(along_dim(d));
  }
  return out;
}

PLATEAU_REGISTER_OP({"scatter_add",
                     "dself = dy, dsrc = gather(dy, dim, index)",
                     {{"dim 1",
                       {registry::real({3, 4}), registry::index({3, 5}, 4), registry::real({3, 5})},
                       [](const TensorList& in) -> TensorList { return {scatter_add(in[0], 1, in[1], in[2])}; }},
                      {"dim 0, src larger than index",
                       {registry::real({3, 2}), registry::index({4, 2}, 3), registry::real({5, 3})},
                       [](const TensorList& in) -> TensorList { return {scatter_add(in[0], 0, in[1], in[2])}; }}}});

// masked_fill: y = value where mask else x; dx = masked_fill(dy, mask, 0).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  check_defined("masked_fill", mask);
  if (mask.dtype() != DType::b8)
    fail(std::string("masked_fill: mask must be bool, got ") + dtype_name(mask.dtype()) + "; compare with eq/gt/...");
  if (broadcast_shapes(x.shape(), mask.shape(), "masked_fill") != x.shape())
    fail("masked_fill: mask of shape " + mask.shape().str() + " must broadcast to x's shape " + x.shape().str());
  Tensor out = copy_of(x, x.dtype());
  kernels::masked_fill(out, mask, value);
  if (autograd::should_record({&x}))
    autograd::record("masked_fill", {x, mask}, {&out}, {mask}, [](BackwardContext& c) -> TensorList {
      return {masked_fill(c.grad(), c.saved(0), 0.0), Tensor()};
    }).examples(autograd::ExampleMap::elementwise);
  return out;
}

PLATEAU_REGISTER_OP({"masked_fill",
                     "dx = masked_fill(dy, mask, 0)",
                     {{"same shape",
                       {registry::real({3, 4}), registry::mask({3, 4})},
                       [](const TensorList& in) -> TensorList { return {masked_fill(in[0], in[1], -1.5)}; }},
                      {"broadcast mask",
                       {registry::real({2, 3, 4}), registry::mask({3, 1})},
                       [](const TensorList& in) -> TensorList { return {masked_fill(in[0], in[1], 2.0)}; }}}});

// one_hot: y[p, c] = (indices[p] == c), i64; no gradient. num_classes = -1 uses max(indices) + 1.
Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  check_defined("one_hot", indices);
  if (indices.dtype() != DType::i64)
    fail(std::string("one_hot: indices must be i64, got ") + dtype_name(indices.dtype()));
  if (num_classes == -1) {
    std::vector<int64_t> v = indices.to_vector<int64_t>();
    num_classes = v.empty() ? 0 : *std::max_element(v.begin(), v.end()) + 1;
  }
  if (num_classes < 0)
    fail("one_hot: num_classes must be positive (or -1 to infer), got " + std::to_string(num_classes));
  kernels::BadIndex bad = kernels::find_out_of_range(indices, num_classes);
  if (bad.position >= 0)
    throw std::out_of_range("plateau: one_hot: class index " + std::to_string(bad.value) + " at position " +
                            std::to_string(bad.position) + " is out of range for num_classes " +
                            std::to_string(num_classes) + " (valid: 0 to " + std::to_string(num_classes - 1) + ")");
  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, DType::i64, indices.device());
  kernels::one_hot(indices, out);
  return out;
}

PLATEAU_REGISTER_OP({"one_hot",
                     "no gradient (integer output)",
                     {{{"[2, 3] indices, 5 classes",
                        {registry::index({2, 3}, 5)},
                        [](const TensorList& in) -> TensorList { return {one_hot(in[0], 5)}; }}}},
                     false,
                     [] {
                       Tensor y = one_hot(tensor(std::vector<int64_t>{2, 0, 1, 2}, {2, 2}), 3);
                       std::vector<int64_t> want = {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1};
                       if (y.shape() != Shape{2, 2, 3} || y.dtype() != DType::i64 || y.to_vector<int64_t>() != want)
                         throw std::runtime_error("one_hot: wrong values " + y.str());
                     }});

}  // namespace plateau
