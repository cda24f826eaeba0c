// Shape/indexing ops and reductions: values against brute-force loops, views sharing storage,
// contiguity, negative dims and keepdim, errors, the sum kernel's fast paths and thread-count
// independence, and first derivatives against closed forms. (gradcheck and gradgradcheck over the
// registry cases live in test_registry.cpp.)
// (GCC 12.2's SLP vectorizer miscompiled a check_ints call of this file at -O3 with AVX-512; the
// root meson.build turns that pass off on GCC 12.)

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "plateau.h"
#include "tests/helpers.h"

using namespace plateau;
using plateau::testing::check_error;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// Distinct, tie-free values for a shape (row-major).
std::vector<double> wiggle(int64_t n, double scale = 3.0) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37 * static_cast<double>(i) + 0.1) + 0.001 * i;
  return v;
}

Tensor make(const Shape& s, DType dtype = DType::f64) { return tensor(wiggle(s.numel()), s, dtype); }

Tensor leaf(const std::vector<double>& v, const Shape& s) {
  Tensor x = tensor(v, s, DType::f64);
  x.requires_grad_();
  return x;
}

void unravel(int64_t i, const Shape& s, std::vector<int64_t>& c) {
  c.assign(s.size(), 0);
  for (int64_t d = s.size() - 1; d >= 0; --d) c[d] = i % s[d], i /= s[d];
}

int64_t ravel(const std::vector<int64_t>& c, const Shape& s) {
  int64_t i = 0;
  for (int64_t d = 0; d < s.size(); ++d) i = i * s[d] + c[d];
  return i;
}

// Brute-force sum over the dims in mask (keepdim layout).
std::vector<double> ref_sum(const std::vector<double>& v, const Shape& s, const std::vector<bool>& mask) {
  Shape out = s;
  for (int64_t d = 0; d < s.size(); ++d)
    if (mask[d]) out[d] = 1;
  std::vector<double> r(out.numel(), 0.0);
  std::vector<int64_t> c;
  for (int64_t i = 0; i < s.numel(); ++i) {
    unravel(i, s, c);
    for (int64_t d = 0; d < s.size(); ++d)
      if (mask[d]) c[d] = 0;
    r[ravel(c, out)] += v[i];
  }
  return r;
}

void check_close(const Tensor& t, const std::vector<double>& want, double tol) {
  std::vector<double> got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    if (std::isinf(want[i]))
      CHECK(got[i] == want[i]);
    else
      CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

void check_ints_at(int line, const Tensor& t, const std::vector<int64_t>& want) {
  INFO("called from line " << line << ", got " << t.str());
  CHECK(t.dtype() == DType::i64);
  CHECK(t.to_vector<int64_t>() == want);
}

// Gradient of sum(f(x) * w) at x, with w = 1 unless given.
std::vector<double> grad_of(const std::function<Tensor(const Tensor&)>& f, Tensor x, Tensor w = {}) {
  x.zero_grad();
  Tensor y = f(x);
  if (!w.defined()) w = ones_like(y);
  y.backward(w);
  return x.grad().to_vector<double>();
}

#define check_ints(t, ...) check_ints_at(__LINE__, t, __VA_ARGS__)

bool same_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

}  // namespace

TEST_CASE("shape: views share storage with their base") {
  Tensor x = tensor(wiggle(12), {3, 4}, DType::f32);
  Tensor v = view(x, {2, 6});
  v.data<float>()[7] = 100.f;  // element (1, 1) of v is element (1, 3) of x
  CHECK(x.to_vector<float>()[7] == 100.f);

  Tensor t = transpose(x, 0, 1);  // t[i][j] = x[j][i]
  t.data<float>()[2 * t.strides()[0] + 1 * t.strides()[1]] = -5.f;
  CHECK(x.to_vector<float>()[1 * 4 + 2] == -5.f);

  Tensor s = slice(x, 1, 1, 4, 2);  // columns 1 and 3
  CHECK(s.shape() == Shape{3, 2});
  s.data<float>()[1 * s.strides()[0] + 1 * s.strides()[1]] = 42.f;
  CHECK(x.to_vector<float>()[1 * 4 + 3] == 42.f);

  for (const Tensor& w : {view(x, {12}), reshape(x, {4, 3}), flatten(x), permute(x, {1, 0}), unsqueeze(x, 0),
                          squeeze(unsqueeze(x, 2)), expand(unsqueeze(x, 0), {2, 3, 4}), slice(x, 0, 1, 3)})
    CHECK(same_storage(w, x));
  CHECK(!same_storage(clone(x), x));
  CHECK(!same_storage(reshape(t, {12}), x));  // a transpose cannot be flattened without a copy
}

TEST_CASE("shape: contiguity flags and strides") {
  Tensor x = make({2, 3, 4});
  CHECK(x.is_contiguous());
  CHECK(!transpose(x, 0, 2).is_contiguous());
  CHECK(transpose(transpose(x, 0, 2), 2, 0).is_contiguous());
  CHECK(!slice(x, 2, 0, 4, 2).is_contiguous());
  CHECK(slice(x, 0, 1, 2).is_contiguous());
  CHECK(unsqueeze(x, 1).is_contiguous());
  Tensor e = expand(make({3, 1}), {2, 3, 5});
  CHECK(!e.is_contiguous());
  CHECK(e.strides() == Shape{0, 1, 0});
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(clone(p).is_contiguous());
  CHECK(slice(x, -1, 1, 4, 2).offset() == 1);
  CHECK(slice(x, -1, 1, 4, 2).strides() == Shape{12, 4, 2});
  // A view of strided memory works where the strides allow it: merge dims 0 and 1 of [2, 3, 2].
  Tensor sx = slice(x, 2, 0, 4, 2);
  Tensor merged = view(sx, {6, 2});
  CHECK(merged.strides() == Shape{4, 2});
  check_close(merged, reshape(clone(sx), {6, 2}).to_vector<double>(), 0);
}

TEST_CASE("shape: values of views and negative dims") {
  Tensor x = make({2, 3, 4});
  std::vector<double> v = x.to_vector<double>();
  std::vector<double> want;
  // permute {-1, 0, 1}: y[k][i][j] = x[i][j][k]
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(v[(i * 3 + j) * 4 + k]);
  check_close(permute(x, {-1, 0, 1}), want, 0);
  want.clear();
  // transpose(-1, 0): y[k][j][i] = x[i][j][k]
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) want.push_back(v[(i * 3 + j) * 4 + k]);
  check_close(transpose(x, -1, 0), want, 0);
  check_close(reshape(transpose(x, -1, 0), {-1}), want, 0);
  CHECK(flatten(x, 1).shape() == Shape{2, 12});
  CHECK(flatten(x, 0, -2).shape() == Shape{6, 4});
  CHECK(flatten(scalar_tensor(3.0)).shape() == Shape{1});
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 3, 4, 1});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3, 4});
  CHECK(squeeze(make({1, 3, 1}), -1).shape() == Shape{1, 3});
  CHECK(squeeze(make({1, 3, 1})).shape() == Shape{3});
  CHECK(squeeze(make({2, 3}), 0).shape() == Shape{2, 3});  // not size 1: unchanged, as in libtorch
  CHECK(view(x, {4, -1}).shape() == Shape{4, 6});
  Tensor e = expand(tensor(std::vector<double>{1, 2, 3}, {3, 1}, DType::f64), {2, -1, 2});
  check_close(e, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}, 0);
}

TEST_CASE("shape: slice bounds, steps and slice_backward") {
  Tensor x = tensor(wiggle(7), {7}, DType::f64);
  std::vector<double> v = x.to_vector<double>();
  check_close(slice(x, 0, 1, 6, 2), {v[1], v[3], v[5]}, 0);
  check_close(slice(x, 0, -3, 100), {v[4], v[5], v[6]}, 0);
  check_close(slice(x, -1, 0, 7, 3), {v[0], v[3], v[6]}, 0);
  CHECK(slice(x, 0, 5, 2).numel() == 0);
  CHECK(slice(x, 0, -100, 2).numel() == 2);
  Tensor g = tensor(std::vector<double>{1, 2, 3}, {3}, DType::f64);
  check_close(slice_backward(g, {7}, 0, 1, 6, 2), {0, 1, 0, 2, 0, 3, 0}, 0);
  check_close(slice_backward(g, {7}, 0, -3, 100, 1), {0, 0, 0, 0, 1, 2, 3}, 0);
}

TEST_CASE("shape: cat, stack and pad") {
  Tensor a = tensor(std::vector<double>{1, 2, 3, 4}, {2, 2}, DType::f64);
  Tensor b = tensor(std::vector<double>{5, 6}, {2, 1}, DType::f64);
  check_close(cat({a, b}, 1), {1, 2, 5, 3, 4, 6}, 0);
  check_close(cat({a, transpose(b, 0, 1)}, -2), {1, 2, 3, 4, 5, 6}, 0);
  Tensor s = stack({a, a * 10.0}, 1);
  CHECK(s.shape() == Shape{2, 2, 2});
  check_close(s, {1, 2, 10, 20, 3, 4, 30, 40}, 0);
  CHECK(stack({a, a}, -1).shape() == Shape{2, 2, 2});
  check_close(stack({a, a}, -1), {1, 1, 2, 2, 3, 3, 4, 4}, 0);
  Tensor p = pad(a, {1, 0, 0, 1}, -1.0);  // last dim: 1 before; first dim: 1 after
  CHECK(p.shape() == Shape{3, 3});
  check_close(p, {-1, 1, 2, -1, 3, 4, -1, -1, -1}, 0);
  check_close(pad(transpose(a, 0, 1), {0, 1}), {1, 3, 0, 2, 4, 0}, 0);
}

TEST_CASE("index: index_select, index_add, gather, scatter_add against loops") {
  Tensor x = make({3, 4, 2});
  std::vector<double> v = x.to_vector<double>();
  Tensor idx = tensor(std::vector<int64_t>{3, 0, 3}, {3});
  std::vector<double> want;
  for (int i = 0; i < 3; ++i)
    for (int64_t j : {3, 0, 3})
      for (int k = 0; k < 2; ++k) want.push_back(v[(i * 4 + j) * 2 + k]);
  check_close(index_select(x, 1, idx), want, 0);
  check_close(index_select(permute(x, {0, 1, 2}), -2, idx), want, 0);

  // index_add: repeated indices accumulate.
  Tensor self = zeros({3, 4, 2}, DType::f64);
  Tensor src = make({3, 3, 2});
  std::vector<double> sv = src.to_vector<double>(), acc(24, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int n = 0; n < 3; ++n)
      for (int k = 0; k < 2; ++k) acc[(i * 4 + std::vector<int>{3, 0, 3}[n]) * 2 + k] += sv[(i * 3 + n) * 2 + k];
  check_close(index_add(self, 1, idx, src), acc, 1e-15);

  // gather along dim 0 with a smaller index; scatter_add is its adjoint.
  Tensor gi = tensor(std::vector<int64_t>{2, 0, 1, 1, 0, 2}, {2, 3});
  Tensor y = make({3, 4});
  std::vector<double> yv = y.to_vector<double>();
  std::vector<int64_t> gv = gi.to_vector<int64_t>();
  want.clear();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) want.push_back(yv[gv[i * 3 + j] * 4 + j]);
  check_close(gather(y, 0, gi), want, 0);
  check_close(gather(transpose(transpose(y, 0, 1), 0, 1), 0, gi), want, 0);
  Tensor upd = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  std::vector<double> sc(12, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) sc[gv[i * 3 + j] * 4 + j] += 1 + i * 3 + j;
  check_close(scatter_add(zeros({3, 4}, DType::f64), 0, gi, upd), sc, 0);
  // Along the last dim with repeats.
  Tensor li = tensor(std::vector<int64_t>{1, 1, 0}, {1, 3});
  check_close(scatter_add(zeros({1, 2}, DType::f64), -1, li, tensor(std::vector<double>{1, 2, 4}, {1, 3}, DType::f64)),
              {4, 3}, 0);
}

TEST_CASE("index: masked_fill, one_hot, clone, to_dtype") {
  Tensor x = make({2, 3});
  std::vector<double> v = x.to_vector<double>();
  Tensor mask = tensor(std::vector<double>{1, 0, 1}, {3}, DType::b8);
  check_close(masked_fill(x, mask, 7.5), {7.5, v[1], 7.5, 7.5, v[4], 7.5}, 0);
  check_ints(one_hot(tensor(std::vector<int64_t>{0, 2, 1}, {3}), 3), {1, 0, 0, 0, 0, 1, 0, 1, 0});
  CHECK(one_hot(tensor(std::vector<int64_t>{0, 3}, {2}), -1).shape() == Shape{2, 4});
  Tensor c = clone(transpose(x, 0, 1));
  CHECK(c.is_contiguous());
  check_close(c, {v[0], v[3], v[1], v[4], v[2], v[5]}, 0);
  Tensor i = to_dtype(tensor(std::vector<double>{1.7, -2.2, 0}, {3}, DType::f64), DType::i64);
  check_ints(i, {1, -2, 0});
  Tensor b = to_dtype(i, DType::b8);
  CHECK(b.dtype() == DType::b8);
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, true, false});
}

TEST_CASE("errors: shapes, dims and indices are named") {
  Tensor x = make({2, 3});
  check_error([&] { reshape(x, {4, 2}); }, {"reshape", "[4, 2]", "[2, 3]"});
  check_error([&] { view(x, {-1, -1}); }, {"view", "-1"});
  check_error([&] { view(transpose(x, 0, 1), {6}); }, {"view", "[3, 2]", "reshape"});
  check_error([&] { sum(x, {2}); }, {"sum", "dim 2", "rank 2"});
  check_error([&] { sum(x, {1, -1}); }, {"sum", "more than once"});
  check_error([&] { max(x, -3); }, {"max", "dim -3"});
  check_error([&] { permute(x, {0, 0}); }, {"permute", "twice"});
  check_error([&] { permute(x, {0}); }, {"permute", "rank 2"});
  check_error([&] { unsqueeze(x, 3); }, {"unsqueeze", "dim 3"});
  check_error([&] { expand(x, {2, 4}); }, {"expand", "[2, 3]", "[2, 4]", "dim 1"});
  check_error([&] { slice(x, 0, 0, 2, 0); }, {"slice", "step"});
  check_error([&] { cat({x, make({3, 3})}, 1); }, {"cat", "tensor 1", "[3, 3]", "[2, 3]"});
  check_error([&] { stack({x, make({3, 2})}); }, {"stack", "tensor 1", "[3, 2]"});
  check_error([&] { pad(x, {1, -1}); }, {"pad", "negative"});
  check_error([&] { pad(x, {1, 1, 1, 1, 1, 1}); }, {"pad", "even length"});
  check_error(
      [&] {
        index_select(x, 1, tensor(std::vector<int64_t>{0, 3}, {2}));
      },
      {"index_select", "index 3", "position 1", "dim 1", "size 3"});
  check_error([&] { index_select(x, 0, tensor(std::vector<int64_t>{-1}, {1})); },
              {"index_select", "index -1", "size 2"});
  check_error([&] { index_select(x, 0, tensor(std::vector<double>{0}, {1})); }, {"index_select", "i64"});
  check_error(
      [&] {
        gather(x, 0, tensor(std::vector<int64_t>{0, 2}, {1, 2}));
      },
      {"gather", "index 2", "dim 0", "size 2"});
  check_error([&] { gather(x, 0, tensor(std::vector<int64_t>{0, 1}, {2})); }, {"gather", "dims"});
  check_error([&] { scatter_add(x, 1, tensor(std::vector<int64_t>{5}, {1, 1}), x); }, {"scatter_add", "index 5"});
  check_error([&] { index_add(x, 0, tensor(std::vector<int64_t>{0}, {1}), x); }, {"index_add", "[1, 3]"});
  check_error([&] { one_hot(tensor(std::vector<int64_t>{0, 1, 4}, {3}), 3); }, {"one_hot", "4", "position 2", "3"});
  check_error([&] { one_hot(tensor(std::vector<int64_t>{-2}, {1}), 3); }, {"one_hot", "-2", "position 0"});
  check_error([&] { masked_fill(x, tensor(std::vector<double>{1, 0}, {2}), 0); }, {"masked_fill", "bool"});
  check_error([&] { topk(x, 4, 1); }, {"topk", "k = 4", "size 3"});
  check_error([&] { norm(x, 3); }, {"norm", "p = 3"});
  check_error([&] { mean(tensor(std::vector<int64_t>{1}, {1})); }, {"mean", "i64"});
  check_error([&] { sum_to_shape(x, {2}); }, {"sum_to_shape", "[2, 3]", "[2]"});
}

TEST_CASE("reduction: sum over every set of dims, keepdim, strided inputs") {
  Shape s{2, 3, 4, 5};
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor x = make(s, dtype);
    std::vector<double> v = x.to_vector<double>();
    double tol = dtype == DType::f32 ? 1e-6 : 1e-14;
    for (int m = 0; m < 16; ++m) {
      std::vector<bool> mask(4);
      Dims dims;
      for (int d = 0; d < 4; ++d)
        if ((mask[d] = (m >> d) & 1)) dims.push_back(d - (m % 3 == 0 ? 4 : 0));  // some negative
      if (dims.empty()) mask.assign(4, true);                                    // empty dims reduce everything
      INFO("mask " << m << " dtype " << dtype_name(dtype));
      std::vector<double> want = ref_sum(v, s, mask);
      Tensor k = sum(x, dims, true);
      CHECK(k.dtype() == dtype);
      CHECK(k.dim() == 4);
      check_close(k, want, tol);
      Tensor d = sum(x, dims, false);
      CHECK(d.numel() == static_cast<int64_t>(want.size()));
      CHECK(d.dim() == 4 - static_cast<int64_t>(std::count(mask.begin(), mask.end(), true)));
      check_close(d, want, tol);
    }
    // Permuted (non-contiguous) inputs are reduced in memory order; the kept dims come back in place.
    Tensor p = permute(x, {0, 3, 1, 2});
    check_close(sum(p, {1}), reshape(sum(x, {3}), {-1}).to_vector<double>(), tol);
    Tensor q = permute(x, {2, 0, 3, 1});
    std::vector<double> qv = q.to_vector<double>();
    for (int m = 1; m < 16; ++m) {
      std::vector<bool> mask(4);
      Dims dims;
      for (int d = 0; d < 4; ++d)
        if ((mask[d] = (m >> d) & 1)) dims.push_back(d);
      INFO("permuted, mask " << m);
      check_close(sum(q, dims, true), ref_sum(qv, q.shape(), mask), tol);
    }
    // Strided and expanded inputs go through a contiguous copy.
    Tensor st = slice(x, 3, 0, 5, 2);
    check_close(sum(st, {1, 3}), ref_sum(st.to_vector<double>(), st.shape(), {false, true, false, true}), tol);
    Tensor ex = expand(slice(x, 0, 0, 1), {3, 3, 4, 5});
    check_close(sum(ex, {0, 2}), ref_sum(ex.to_vector<double>(), ex.shape(), {true, false, true, false}), tol);
    CHECK(sum(x).dim() == 0);
    CHECK(sum(x).item() == doctest::Approx(ref_sum(v, s, {true, true, true, true})[0]).epsilon(1e-6));
  }
  // Integer and bool sums count in i64.
  Tensor b = tensor(std::vector<double>{1, 0, 1, 1, 0, 1}, {2, 3}, DType::b8);
  check_ints(sum(b), {4});
  check_ints(sum(b, {0}), {2, 0, 2});
  check_ints(sum(tensor(std::vector<int64_t>{3, -1, 5, 7}, {2, 2}), {1}), {2, 12});
  // Empty dims and empty tensors.
  check_close(sum(zeros({0, 3}, DType::f64), {0}), {0, 0, 0}, 0);
  CHECK(sum(zeros({2, 0}, DType::f64)).item() == 0.0);
}

TEST_CASE("reduction: large sums hit the fast paths, are accurate and do not depend on the thread count") {
  struct Case {
    Shape shape;
    Dims dims;
  };
  std::vector<Case> cases = {{{3000, 70}, {0}},         // bias gradient: leading dim of [N, K]
                             {{70, 3000}, {-1}},        // last dim
                             {{100003}, {}},            // everything, several blocks
                             {{30, 500, 7}, {1}},       // a middle dim
                             {{6, 40, 5, 30}, {0, 2}},  // two separate groups
                             {{513, 1031}, {0}}};       // odd sizes: partial blocks everywhere
  int threads = get_num_threads();
  for (const Case& c : cases) {
    INFO("shape " << c.shape.str());
    Tensor x64 = make(c.shape);
    std::vector<bool> mask(c.shape.size(), c.dims.empty());
    for (int64_t d : c.dims) mask[d < 0 ? d + c.shape.size() : d] = true;
    for (DType dtype : {DType::f32, DType::f64}) {
      Tensor x = x64.to(dtype);
      // The reference sums the f32-rounded inputs in double, as the kernel does.
      std::vector<double> want_d = ref_sum(x.to_vector<double>(), c.shape, mask);
      set_num_threads(1);
      std::vector<double> one = sum(x, c.dims).to_vector<double>();
      set_num_threads(2);
      std::vector<double> two = sum(x, c.dims).to_vector<double>();
      set_num_threads(3);
      std::vector<double> three = sum(x, c.dims).to_vector<double>();
      CHECK(one == two);
      CHECK(one == three);
      check_close(sum(x, c.dims), want_d, dtype == DType::f32 ? 1e-7 : 1e-12);
      // The same values through a transposed layout (reduced in memory order).
      if (c.shape.size() == 2) {
        Tensor t = transpose(clone(transpose(x, 0, 1)), 0, 1);
        CHECK(!t.is_contiguous());
        set_num_threads(1);
        std::vector<double> t1 = sum(t, c.dims).to_vector<double>();
        set_num_threads(2);
        CHECK(sum(t, c.dims).to_vector<double>() == t1);
        check_close(sum(t, c.dims), want_d, dtype == DType::f32 ? 1e-7 : 1e-12);
      }
    }
  }
  set_num_threads(threads);
}

TEST_CASE("reduction: mean, var and std against closed forms") {
  Tensor x = tensor(std::vector<double>{1, 2, 3, 4, 2, 4, 6, 8}, {2, 4}, DType::f64);
  check_close(mean(x), {3.75}, 1e-15);
  check_close(mean(x, {1}), {2.5, 5}, 1e-15);
  CHECK(mean(x, {-1}, true).shape() == Shape{2, 1});
  check_close(var(x, {1}), {5.0 / 3.0, 20.0 / 3.0}, 1e-14);
  check_close(var(x, {1}, 0), {1.25, 5.0}, 1e-14);
  check_close(plateau::std(x, {1}), {std::sqrt(5.0 / 3.0), std::sqrt(20.0 / 3.0)}, 1e-14);
  check_close(var(x, {0}, 0, true), {0.25, 1, 2.25, 4}, 1e-14);
  CHECK(var(x, {0}, 0, true).shape() == Shape{1, 4});
  // Everything: mean 3.75, Σ(x − m)² = 37.5.
  check_close(var(x, {}), {37.5 / 7}, 1e-14);
  check_close(plateau::std(x, {}, 0), {std::sqrt(37.5 / 8)}, 1e-14);
}

TEST_CASE("reduction: max, min, argmax, argmin with dims, keepdim and ties") {
  Tensor x = tensor(std::vector<double>{1, 9, 9, -4, 0, 7, 7, -4}, {2, 4}, DType::f32);
  CHECK(max(x).item() == 9);
  CHECK(min(x).item() == -4);
  ValuesIndices m = max(x, 1);
  check_close(m.values, {9, 7}, 0);
  check_ints(m.indices, {1, 1});  // the first of tied maxima
  ValuesIndices n = min(x, 0, true);
  CHECK(n.values.shape() == Shape{1, 4});
  check_close(n.values, {0, 7, 7, -4}, 0);
  check_ints(n.indices, {1, 1, 1, 0});
  check_ints(argmax(x, -1), {1, 1});
  check_ints(argmin(x, 1, true), {3, 3});
  CHECK(argmin(x, 1, true).shape() == Shape{2, 1});
  check_ints(argmax(transpose(x, 0, 1), 1), {0, 0, 0, 0});  // ties again go first
  // Brute force on a 3-d tensor along every dim.
  Shape s{3, 4, 5};
  Tensor y = make(s);
  std::vector<double> v = y.to_vector<double>();
  for (int64_t d = 0; d < 3; ++d) {
    ValuesIndices r = max(y, d);
    std::vector<double> got = r.values.to_vector<double>();
    std::vector<int64_t> gi = r.indices.to_vector<int64_t>();
    std::vector<int64_t> c;
    for (int64_t i = 0; i < s.numel(); ++i) {
      unravel(i, s, c);
      int64_t at = c[d];
      c.erase(c.begin() + d);
      Shape out = s;
      out.erase(d);
      int64_t o = ravel(c, out);
      CHECK(v[i] <= got[o]);
      if (at == gi[o]) CHECK(v[i] == got[o]);
    }
  }
  // NaN is the largest value.
  Tensor z = tensor(std::vector<double>{1, std::nan(""), 3}, {3}, DType::f64);
  check_ints(argmax(z, 0), {1});
}

TEST_CASE("reduction: logsumexp is stable") {
  Tensor x = tensor(std::vector<double>{1000, 1000, -1000, -kInf, -kInf, -kInf}, {2, 3}, DType::f64);
  check_close(logsumexp(x, {1}), {1000 + std::log(2.0), -kInf}, 1e-14);
  Tensor y = make({2, 3, 4});
  std::vector<double> v = y.to_vector<double>(), want(3, 0.0);
  for (int64_t i = 0; i < 24; ++i) want[(i / 4) % 3] += std::exp(v[i]);
  for (double& w : want) w = std::log(w);
  check_close(logsumexp(y, {0, -1}), want, 1e-14);
  CHECK(logsumexp(y, {0, -1}, true).shape() == Shape{1, 3, 1});
}

TEST_CASE("reduction: norm p = 1, 2, infinity") {
  Tensor x = tensor(std::vector<double>{3, -4, 0, -1, 2, 2}, {2, 3}, DType::f64);
  check_close(norm(x), {std::sqrt(34.0)}, 1e-15);
  check_close(norm(x, 1), {12}, 0);
  check_close(norm(x, kInf), {4}, 0);
  check_close(norm(x, 2, {1}), {5, 3}, 1e-15);
  check_close(norm(x, 1, {0}, true), {4, 6, 2}, 0);
  check_close(norm(x, kInf, {-2}), {3, 4, 2}, 0);
  CHECK(norm(x, kInf, {1}, true).shape() == Shape{2, 1});
}

TEST_CASE("reduction: topk is sorted with i64 indices") {
  Tensor x = tensor(std::vector<double>{5, 1, 4, 1, 9, 2, 6, 5}, {2, 4}, DType::f64);
  ValuesIndices t = topk(x, 2);
  check_close(t.values, {5, 4, 9, 6}, 0);
  check_ints(t.indices, {0, 2, 0, 2});
  ValuesIndices s = topk(x, 3, 1, false);
  check_close(s.values, {1, 1, 4, 2, 5, 6}, 0);
  check_ints(s.indices, {1, 3, 2, 1, 3, 2});  // ties: lower position first
  ValuesIndices c = topk(x, 1, 0);
  check_close(c.values, {9, 2, 6, 5}, 0);
  check_ints(c.indices, {1, 1, 1, 1});
  // Brute force: topk of a shuffled row equals its sorted values.
  Tensor y = make({1, 40});
  std::vector<double> v = y.to_vector<double>();
  std::sort(v.begin(), v.end(), std::greater<double>());
  v.resize(10);
  check_close(topk(y, 10).values, v, 0);
}

TEST_CASE("reduction: sum_to_shape undoes broadcasting") {
  Tensor x = make({2, 3, 4});
  std::vector<double> v = x.to_vector<double>();
  check_close(sum_to_shape(x, {3, 1}), ref_sum(v, {2, 3, 4}, {true, false, true}), 1e-14);
  check_close(sum_to_shape(x, {4}), ref_sum(v, {2, 3, 4}, {true, true, false}), 1e-14);
  check_close(sum_to_shape(x, {1, 1, 1}), ref_sum(v, {2, 3, 4}, {true, true, true}), 1e-14);
  CHECK(sum_to_shape(x, {3, 1}).shape() == Shape{3, 1});
  CHECK(sum_to_shape(x, {}).shape() == Shape{});
  CHECK(sum_to_shape(x, {2, 3, 4}).is_same(x));
}

TEST_CASE("gradients: shape and index ops against closed forms") {
  Tensor x = leaf(wiggle(8), {8});
  // sum(x[::2]): 1 at even positions.
  CHECK(grad_of([](const Tensor& t) { return sum(slice(t, 0, 0, 8, 2)); }, x) ==
        std::vector<double>{1, 0, 1, 0, 1, 0, 1, 0});
  // index_select counts how often each position is chosen.
  Tensor idx = tensor(std::vector<int64_t>{1, 1, 5, 0, 1}, {5});
  CHECK(grad_of([&](const Tensor& t) { return index_select(t, 0, idx); }, x) ==
        std::vector<double>{1, 3, 0, 0, 0, 1, 0, 0});
  // gather with weights: the weights land at the gathered positions.
  Tensor w = tensor(std::vector<double>{2, 3, 5}, {3}, DType::f64);
  CHECK(grad_of(
            [&](const Tensor& t) {
              return gather(t, 0, tensor(std::vector<int64_t>{7, 2, 7}, {3}));
            },
            x, w) == std::vector<double>{0, 0, 3, 0, 0, 0, 0, 7});
  // pad: the gradient is the unpadded region of the weights.
  Tensor pw = tensor(wiggle(11), {11}, DType::f64);
  std::vector<double> pv = pw.to_vector<double>();
  CHECK(grad_of(
            [](const Tensor& t) {
              return pad(t, {2, 1});
            },
            x, pw) == std::vector<double>(pv.begin() + 2, pv.end() - 1));
  // masked_fill: no gradient where filled.
  Tensor mask = tensor(std::vector<double>{1, 0, 0, 1, 0, 0, 0, 1}, {8}, DType::b8);
  CHECK(grad_of([&](const Tensor& t) { return masked_fill(t, mask, 3.0); }, x) ==
        std::vector<double>{0, 1, 1, 0, 1, 1, 1, 0});
  // expand: every copy contributes.
  Tensor m = leaf({1, 2, 3}, {3, 1});
  CHECK(grad_of([](const Tensor& t) { return expand(t, {2, 3, 4}); }, m) == std::vector<double>{8, 8, 8});
  // cat: each input gets its slice of the weights.
  Tensor a = leaf({1, 2}, {2}), b = leaf({3, 4, 5}, {3});
  Tensor cw = tensor(std::vector<double>{10, 20, 30, 40, 50}, {5}, DType::f64);
  cat({a, b}).backward(cw);
  CHECK(a.grad().to_vector<double>() == std::vector<double>{10, 20});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{30, 40, 50});
  // permute/transpose/reshape: the weights are moved back.
  Tensor p = leaf(wiggle(6), {2, 3});
  Tensor tw = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}, DType::f64);
  CHECK(grad_of([](const Tensor& t) { return transpose(t, 0, 1); }, p, tw) == std::vector<double>{1, 3, 5, 2, 4, 6});
  CHECK(grad_of([](const Tensor& t) { return permute(t, {1, 0}); }, p, tw) == std::vector<double>{1, 3, 5, 2, 4, 6});
  CHECK(grad_of([](const Tensor& t) { return reshape(transpose(t, 0, 1), {6}); }, p, reshape(tw, {6})) ==
        std::vector<double>{1, 3, 5, 2, 4, 6});
  // index_add and scatter_add: self gets the weights, the source what its positions received.
  Tensor self = leaf({0, 0, 0}, {3}), src = leaf({1, 1}, {2});
  Tensor aw = tensor(std::vector<double>{2, 3, 5}, {3}, DType::f64);
  index_add(self, 0, tensor(std::vector<int64_t>{2, 0}, {2}), src).backward(aw);
  CHECK(self.grad().to_vector<double>() == std::vector<double>{2, 3, 5});
  CHECK(src.grad().to_vector<double>() == std::vector<double>{5, 2});
  self.zero_grad(), src.zero_grad();
  Tensor big = leaf({1, 1, 1}, {3});  // src larger than index: its last element gets nothing
  scatter_add(self, 0, tensor(std::vector<int64_t>{1, 1}, {2}), big).backward(aw);
  CHECK(self.grad().to_vector<double>() == std::vector<double>{2, 3, 5});
  CHECK(big.grad().to_vector<double>() == std::vector<double>{3, 3, 0});
  // to_dtype: the gradient returns in the input's dtype.
  Tensor f = tensor(std::vector<float>{1.5f, -2.f}, {2});
  f.requires_grad_();
  sum(mul(to_dtype(f, DType::f64), to_dtype(f, DType::f64))).backward();
  CHECK(f.grad().dtype() == DType::f32);
  CHECK(f.grad().to_vector<float>() == std::vector<float>{3.f, -4.f});
}

TEST_CASE("gradients: reductions against closed forms") {
  std::vector<double> v = {0.5, -1.5, 2.0, 0.25, -0.75, 1.0};
  Tensor x = leaf(v, {2, 3});
  // max over all: one at the largest element; min along a dim: one per row.
  CHECK(grad_of([](const Tensor& t) { return max(t); }, x) == std::vector<double>{0, 0, 1, 0, 0, 0});
  CHECK(grad_of([](const Tensor& t) { return min(t, 1).values; }, x) == std::vector<double>{0, 1, 0, 0, 1, 0});
  CHECK(grad_of([](const Tensor& t) { return topk(t, 2, 1).values; }, x) == std::vector<double>{1, 0, 1, 1, 0, 1});
  CHECK(grad_of([](const Tensor& t) { return mean(t); }, x) == std::vector<double>(6, 1.0 / 6));
  CHECK(grad_of([](const Tensor& t) { return sum(t, {0}); }, x) == std::vector<double>(6, 1.0));
  // logsumexp: softmax of each row.
  std::vector<double> want;
  for (int r = 0; r < 2; ++r) {
    double z = 0;
    for (int c = 0; c < 3; ++c) z += std::exp(v[r * 3 + c]);
    for (int c = 0; c < 3; ++c) want.push_back(std::exp(v[r * 3 + c]) / z);
  }
  std::vector<double> g = grad_of([](const Tensor& t) { return logsumexp(t, {1}); }, x);
  for (size_t i = 0; i < 6; ++i) CHECK(g[i] == doctest::Approx(want[i]).epsilon(1e-14));
  // var over dim 1: 2 (x − mean) / (n − 1).
  g = grad_of([](const Tensor& t) { return var(t, {1}); }, x);
  for (int r = 0; r < 2; ++r) {
    double mu = (v[r * 3] + v[r * 3 + 1] + v[r * 3 + 2]) / 3;
    for (int c = 0; c < 3; ++c) CHECK(g[r * 3 + c] == doctest::Approx(2 * (v[r * 3 + c] - mu) / 2).epsilon(1e-14));
  }
  // norm 2: x / |x|; norm 1: sign(x); norm ∞: sign at the largest |x|.
  double n2 = 0;
  for (double e : v) n2 += e * e;
  g = grad_of([](const Tensor& t) { return norm(t); }, x);
  for (size_t i = 0; i < 6; ++i) CHECK(g[i] == doctest::Approx(v[i] / std::sqrt(n2)).epsilon(1e-14));
  CHECK(grad_of([](const Tensor& t) { return norm(t, 1); }, x) == std::vector<double>{1, -1, 1, 1, -1, 1});
  // At 0 the 2-norm's gradient is 0, not NaN (a row of zeros next to a nonzero one).
  Tensor z = leaf({0, 0, 3, 4}, {2, 2});
  CHECK(grad_of([](const Tensor& t) { return norm(t, 2, {1}); }, z) == std::vector<double>{0, 0, 0.6, 0.8});
  CHECK(grad_of([](const Tensor& t) { return norm(t, kInf, {1}); }, x) == std::vector<double>{0, 0, 1, 0, 0, 1});
}

TEST_CASE("gradients: second derivative of logsumexp is diag(p) - p pᵀ") {
  std::vector<double> v = {0.3, -1.2, 0.8, 2.0};
  Tensor x = leaf(v, {4});
  Tensor u = tensor(std::vector<double>{1, -2, 0.5, 3}, {4}, DType::f64);
  Tensor y = logsumexp(x, {0});
  GradOptions go;
  go.create_graph = true;
  Tensor g = grad({y}, {x}, go)[0];
  Tensor hv = grad({sum(mul(g, u))}, {x})[0];
  double z = 0, pu = 0;
  for (double e : v) z += std::exp(e);
  std::vector<double> uv = u.to_vector<double>(), h = hv.to_vector<double>();
  for (int i = 0; i < 4; ++i) pu += std::exp(v[i]) / z * uv[i];
  for (int i = 0; i < 4; ++i) {
    double p = std::exp(v[i]) / z;
    CHECK(h[i] == doctest::Approx(p * uv[i] - p * pu).epsilon(1e-12));
  }
}
