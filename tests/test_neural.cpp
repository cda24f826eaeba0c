// Neural ops against brute-force loops and hand-computed values: convolution (and its two backward
// halves), softmax, losses, pooling, normalization, dropout, embedding, and their error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "plateau.h"

using namespace plateau;

namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::f64, double low = -1.0,
                     double high = 1.0) {
  Generator gen(seed);
  return uniform(shape, low, high, dtype, gen);
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-10) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

// Row-major index into a 4-d shape.
int64_t at(const Shape& s, int64_t a, int64_t b, int64_t c, int64_t d) {
  return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

struct ConvCase {
  Shape x, w;
  Conv2dOptions o;
};

Shape conv_out_shape(const ConvCase& k) {
  auto out = [&](int i) {
    int64_t span = k.o.dilation[i] * (k.w[2 + i] - 1) + 1;
    return (k.x[2 + i] + 2 * k.o.padding[i] - span) / k.o.stride[i] + 1;
  };
  return {k.x[0], k.w[0], out(0), out(1)};
}

// Visits every (x element, w element, y element) triple that the convolution multiplies together.
template <typename F>
void for_each_tap(const ConvCase& k, F f) {
  const Shape y = conv_out_shape(k);
  const int64_t cg = k.x[1] / k.o.groups, og = k.w[0] / k.o.groups;
  for (int64_t n = 0; n < y[0]; ++n)
    for (int64_t o = 0; o < y[1]; ++o)
      for (int64_t oh = 0; oh < y[2]; ++oh)
        for (int64_t ow = 0; ow < y[3]; ++ow)
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < k.w[2]; ++i)
              for (int64_t j = 0; j < k.w[3]; ++j) {
                int64_t ih = oh * k.o.stride[0] - k.o.padding[0] + i * k.o.dilation[0];
                int64_t iw = ow * k.o.stride[1] - k.o.padding[1] + j * k.o.dilation[1];
                if (ih < 0 || ih >= k.x[2] || iw < 0 || iw >= k.x[3]) continue;
                f(at(k.x, n, (o / og) * cg + c, ih, iw), at(k.w, o, c, i, j), at(y, n, o, oh, ow));
              }
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases;
  cases.push_back({{2, 3, 7, 6}, {4, 3, 3, 3}, {}});
  Conv2dOptions a;
  a.stride = {2, 1};
  a.padding = {1, 2};
  a.dilation = {1, 2};
  a.groups = 2;
  cases.push_back({{2, 4, 9, 8}, {6, 2, 3, 2}, a});
  Conv2dOptions depthwise;
  depthwise.stride = {2, 2};
  depthwise.padding = {1, 1};
  depthwise.groups = 6;
  cases.push_back({{1, 6, 5, 5}, {6, 1, 3, 3}, depthwise});
  cases.push_back({{3, 4, 6, 5}, {5, 4, 1, 1}, {}});  // pointwise: no im2col
  Conv2dOptions strided_1x1;
  strided_1x1.stride = {2, 3};
  cases.push_back({{2, 3, 5, 7}, {2, 3, 1, 1}, strided_1x1});
  Conv2dOptions dilated;
  dilated.stride = {3, 3};
  dilated.dilation = {2, 2};
  dilated.padding = {2, 0};
  cases.push_back({{2, 2, 5, 7}, {2, 2, 2, 2}, dilated});
  Conv2dOptions deep;  // K = 8·3·3 = 72 >= 64: the forward's transposed GEMM
  deep.groups = 2;
  deep.padding = {1, 1};
  cases.push_back({{2, 16, 6, 5}, {6, 8, 3, 3}, deep});
  return cases;
}

}  // namespace

TEST_CASE("conv2d matches a brute-force convolution (stride, padding, dilation, groups, bias)") {
  uint64_t seed = 1;
  for (const ConvCase& k : conv_cases()) {
    CAPTURE(k.x.str());
    CAPTURE(k.w.str());
    Tensor x = random_tensor(k.x, seed++), w = random_tensor(k.w, seed++), b = random_tensor({k.w[0]}, seed++);
    Tensor y = conv2d(x, w, b, k.o);
    REQUIRE(y.shape() == conv_out_shape(k));
    std::vector<double> xv = values(x), wv = values(w), bv = values(b), want(y.numel());
    const int64_t plane = want.size() / (k.x[0] * k.w[0]);
    for (size_t i = 0; i < want.size(); ++i) want[i] = bv[(i / plane) % k.w[0]];
    for_each_tap(k, [&](int64_t xi, int64_t wi, int64_t yi) { want[yi] += xv[xi] * wv[wi]; });
    check_close(values(y), want);
    // Non-contiguous operands (transposed twice, and every other element) give the same values.
    Tensor wide = random_tensor({k.x[0], k.x[1], k.x[2], 2 * k.x[3]}, 99);
    Tensor xs = slice(wide, 3, 0, 2 * k.x[3], 2);
    copy_(xs, x);
    Tensor wt = transpose(transpose(w, 2, 3).contiguous(), 2, 3);
    REQUIRE(!xs.is_contiguous());
    check_close(values(conv2d(xs, wt, b, k.o)), want);
  }
}

TEST_CASE("conv2d_input_grad and conv2d_weight_grad match brute-force adjoint loops") {
  uint64_t seed = 100;
  for (const ConvCase& k : conv_cases()) {
    CAPTURE(k.x.str());
    CAPTURE(k.w.str());
    Tensor x = random_tensor(k.x, seed++), w = random_tensor(k.w, seed++);
    Tensor g = random_tensor(conv_out_shape(k), seed++);
    std::vector<double> xv = values(x), wv = values(w), gv = values(g);
    std::vector<double> want_gx(x.numel(), 0.0), want_gw(w.numel(), 0.0);
    for_each_tap(k, [&](int64_t xi, int64_t wi, int64_t yi) {
      want_gx[xi] += wv[wi] * gv[yi];
      want_gw[wi] += xv[xi] * gv[yi];
    });
    check_close(values(conv2d_input_grad(g, w, k.x, k.o)), want_gx);
    check_close(values(conv2d_weight_grad(x, g, k.w, k.o)), want_gw);

    // And they are what autograd returns for conv2d.
    Tensor xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_();
    conv2d(xr, wr, {}, k.o).backward(g);
    check_close(values(xr.grad()), want_gx);
    check_close(values(wr.grad()), want_gw);
  }
}

TEST_CASE("conv2d skips the input gradient when the input does not require grad") {
  Tensor x = random_tensor({2, 1, 5, 5}, 1);
  Tensor w = random_tensor({3, 1, 3, 3}, 2).requires_grad_();
  Tensor y = conv2d(x, w);
  sum(y).backward();
  CHECK(!x.requires_grad());
  CHECK(!x.grad().defined());
  REQUIRE(w.grad().defined());
  // d Σy / dw[o, 0, i, j] = Σ over images and output pixels of the x value each tap reads.
  std::vector<double> xv = values(x);
  double want = 0;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t oh = 0; oh < 3; ++oh)
      for (int64_t ow = 0; ow < 3; ++ow) want += xv[(n * 5 + oh + 1) * 5 + ow + 2];  // tap (1, 2)
  CHECK(values(w.grad())[1 * 3 + 2] == doctest::Approx(want).epsilon(1e-12));
}

TEST_CASE("conv2d second derivatives: the backward ops close under differentiation") {
  ConvCase k{{2, 4, 5, 5}, {4, 2, 3, 3}, {}};
  k.o.groups = 2;
  k.o.stride = {2, 1};
  k.o.padding = {1, 1};
  TensorList in = {random_tensor(k.x, 7).requires_grad_(), random_tensor(k.w, 8).requires_grad_()};
  auto fn = [&](const TensorList& t) -> TensorList { return {conv2d(t[0], t[1], {}, k.o)}; };
  GradcheckResult first = gradcheck(fn, in);
  CHECK_MESSAGE(first.ok, first.message);
  GradcheckResult second = gradgradcheck(fn, in);
  CHECK_MESSAGE(second.ok, second.message);
}

TEST_CASE("conv2d results do not depend on the thread count") {
  const int before = get_num_threads();
  ConvCase k{{40, 8, 16, 16}, {16, 8, 3, 3}, {}};
  k.o.padding = {1, 1};
  Tensor x = random_tensor(k.x, 3, DType::f32), w = random_tensor(k.w, 4, DType::f32);
  Tensor g = random_tensor(conv_out_shape(k), 5, DType::f32);
  set_num_threads(1);
  std::vector<float> y1 = conv2d(x, w, {}, k.o).to_vector<float>();
  std::vector<float> gx1 = conv2d_input_grad(g, w, k.x, k.o).to_vector<float>();
  std::vector<float> gw1 = conv2d_weight_grad(x, g, k.w, k.o).to_vector<float>();
  set_num_threads(2);
  CHECK(conv2d(x, w, {}, k.o).to_vector<float>() == y1);
  CHECK(conv2d_input_grad(g, w, k.x, k.o).to_vector<float>() == gx1);
  CHECK(conv2d_weight_grad(x, g, k.w, k.o).to_vector<float>() == gw1);
  set_num_threads(before);
  // f32 accumulation stays close to the f64 result.
  check_close(std::vector<double>(gw1.begin(), gw1.end()),
              values(conv2d_weight_grad(x.to(DType::f64), g.to(DType::f64), k.w, k.o)), 1e-4);
}

TEST_CASE("conv2d errors name the shapes and options") {
  Tensor x = zeros({2, 4, 6, 6}, DType::f64);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({3, 3, 3, 3}, DType::f64)),
                       doctest::Contains("weight [3, 3, 3, 3] expects 3 input channels per group"),
                       std::invalid_argument);
  Conv2dOptions g3;
  g3.groups = 3;
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({3, 1, 3, 3}, DType::f64), {}, g3),
                       doctest::Contains("input channels (4, input [2, 4, 6, 6]) are not divisible by groups = 3"),
                       std::invalid_argument);
  Conv2dOptions g2;
  g2.groups = 2;
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({3, 2, 3, 3}, DType::f64), {}, g2), doctest::Contains("output channels (3"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv2d(zeros({4, 6, 6}, DType::f64), zeros({3, 4, 3, 3}, DType::f64)),
                       doctest::Contains("plateau: conv2d: input must be [N, C, H, W], got shape [4, 6, 6]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({3, 4, 7, 3}, DType::f64)), doctest::Contains("does not fit the input"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({3, 4, 3, 3}, DType::f64), zeros({4}, DType::f64)),
                       doctest::Contains("bias must be [3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({3, 4, 3, 3}, DType::f32)), doctest::Contains("same floating dtype"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      conv2d_input_grad(zeros({2, 3, 5, 5}, DType::f64), zeros({3, 4, 3, 3}, DType::f64), {2, 4, 6, 6}, {}),
      doctest::Contains("grad_output has shape [2, 3, 5, 5] but the convolution's output is [2, 3, 4, 4]"),
      std::invalid_argument);
}

TEST_CASE("softmax and log_softmax match the direct formula along any dim") {
  Tensor x = random_tensor({3, 4, 5}, 11, DType::f64, -3.0, 3.0);
  std::vector<double> xv = values(x);
  for (int64_t dim : {0, 1, 2, -1}) {
    CAPTURE(dim);
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const int64_t stride = d == 0 ? 20 : d == 1 ? 5 : 1, n = x.size(d);
    std::vector<double> want(xv.size()), want_log(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      const int64_t pos = (static_cast<int64_t>(i) / stride) % n, first = static_cast<int64_t>(i) - pos * stride;
      double denom = 0;
      for (int64_t j = 0; j < n; ++j) denom += std::exp(xv[first + j * stride]);
      want[i] = std::exp(xv[i]) / denom;
      want_log[i] = xv[i] - std::log(denom);
    }
    check_close(values(softmax(x, dim)), want, 1e-12);
    check_close(values(log_softmax(x, dim)), want_log, 1e-12);
    // Rows sum to one.
    for (double s : values(sum(softmax(x, dim), {dim}))) CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
  }
  // Non-contiguous input.
  Tensor xt = transpose(x, 0, 2);
  Tensor want_t = transpose(softmax(x, 0), 0, 2);
  check_close(values(softmax(xt, 2)), values(want_t), 1e-12);
}

TEST_CASE("softmax is stable for large inputs and f32") {
  Tensor x = tensor(std::vector<double>{1000.0, 1001.0, 1002.0, -1000.0}, {1, 4}, DType::f32);
  std::vector<double> y = values(softmax(x, 1));
  const double denom = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  CHECK(y[0] == doctest::Approx(std::exp(-2.0) / denom).epsilon(1e-6));
  CHECK(y[2] == doctest::Approx(1.0 / denom).epsilon(1e-6));
  CHECK(y[3] == 0.0);
  std::vector<double> ly = values(log_softmax(x, 1));
  CHECK(ly[2] == doctest::Approx(-std::log(denom)).epsilon(1e-6));
  CHECK(ly[3] == doctest::Approx(-2002.0 - std::log(denom)).epsilon(1e-6));
}

TEST_CASE("softmax and log_softmax gradients") {
  Tensor x = random_tensor({2, 3}, 12).requires_grad_();
  Tensor g = random_tensor({2, 3}, 13);
  Tensor y = softmax(x, 1);
  y.backward(g);
  std::vector<double> yv = values(y), gv = values(g), want(6);
  for (int r = 0; r < 2; ++r) {
    double dot = 0;
    for (int c = 0; c < 3; ++c) dot += gv[r * 3 + c] * yv[r * 3 + c];
    for (int c = 0; c < 3; ++c) want[r * 3 + c] = yv[r * 3 + c] * (gv[r * 3 + c] - dot);
  }
  check_close(values(x.grad()), want, 1e-12);
  x.zero_grad();
  log_softmax(x, 1).backward(g);
  for (int r = 0; r < 2; ++r) {
    double gs = gv[r * 3] + gv[r * 3 + 1] + gv[r * 3 + 2];
    for (int c = 0; c < 3; ++c) want[r * 3 + c] = gv[r * 3 + c] - yv[r * 3 + c] * gs;
  }
  check_close(values(x.grad()), want, 1e-12);
}

namespace {

// cross_entropy by loops. logits [N, C, D] (D = 1 for [N, C]); targets [N, D] class indices or
// probabilities [N, C, D]; returns per-element losses (reduction none) and the reduced value.
struct CeRef {
  std::vector<double> none;
  double sum = 0, mean = 0;
};

CeRef ce_reference(const std::vector<double>& x, int64_t n, int64_t classes, int64_t d,
                   const std::vector<int64_t>& target, const std::vector<double>& probs,
                   const std::vector<double>& weight, int64_t ignore, double eps) {
  CeRef r;
  double divisor = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < d; ++p) {
      auto xv = [&](int64_t c) { return x[(i * classes + c) * d + p]; };
      auto w = [&](int64_t c) { return weight.empty() ? 1.0 : weight[c]; };
      double m = -1e300, s = 0;
      for (int64_t c = 0; c < classes; ++c) m = std::max(m, xv(c));
      for (int64_t c = 0; c < classes; ++c) s += std::exp(xv(c) - m);
      auto logp = [&](int64_t c) { return xv(c) - m - std::log(s); };
      double loss = 0;
      if (!probs.empty()) {
        for (int64_t c = 0; c < classes; ++c) {
          double t = (1 - eps) * probs[(i * classes + c) * d + p] + eps / classes;
          loss -= w(c) * t * logp(c);
        }
        divisor += 1;
      } else {
        int64_t t = target[i * d + p];
        if (t != ignore) {
          double smooth = 0;
          for (int64_t c = 0; c < classes; ++c) smooth -= w(c) * logp(c);
          loss = (1 - eps) * (-w(t) * logp(t)) + eps / classes * smooth;
          divisor += w(t);
        }
      }
      r.none.push_back(loss);
      r.sum += loss;
    }
  r.mean = r.sum / divisor;
  return r;
}

}  // namespace

TEST_CASE("cross_entropy: a hand-computed value") {
  Tensor logits = tensor(std::vector<double>{1.0, 2.0, 3.0}, {1, 3}, DType::f64);
  // −log softmax([1, 2, 3])[2] = log(e^-2 + e^-1 + 1)
  CHECK(cross_entropy(logits, tensor(std::vector<int64_t>{2}, {1})).item() ==
        doctest::Approx(0.40760596444438).epsilon(1e-12));
  // Unbatched logits [C] with a 0-d target.
  CHECK(cross_entropy(reshape(logits, {3}), tensor(std::vector<int64_t>{0}, {})).item() ==
        doctest::Approx(2.40760596444438).epsilon(1e-12));
  // Smoothing 0.3 with 3 classes: 0.7·nll + 0.1·Σ_c −log p_c.
  CrossEntropyOptions o;
  o.label_smoothing = 0.3;
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  CHECK(cross_entropy(logits, tensor(std::vector<int64_t>{2}, {1}), o).item() ==
        doctest::Approx(0.7 * (lse - 3.0) + 0.1 * (3 * lse - 6.0)).epsilon(1e-12));
}

TEST_CASE("cross_entropy matches loops for every option") {
  const int64_t n = 5, classes = 4;
  Tensor logits = random_tensor({n, classes}, 21, DType::f64, -2.0, 2.0);
  std::vector<double> xv = values(logits);
  std::vector<int64_t> t = {3, 1, 0, 1, 2};
  Tensor target = tensor(t, {n});
  std::vector<double> weight = {0.5, 2.0, 1.0, 1.5};
  for (bool use_weight : {false, true})
    for (int64_t ignore : {int64_t{-100}, int64_t{1}})
      for (double eps : {0.0, 0.2}) {
        CAPTURE(use_weight);
        CAPTURE(ignore);
        CAPTURE(eps);
        CrossEntropyOptions o;
        o.ignore_index = ignore;
        o.label_smoothing = eps;
        if (use_weight) o.weight = tensor(weight, {classes}, DType::f64);
        CeRef ref = ce_reference(xv, n, classes, 1, t, {}, use_weight ? weight : std::vector<double>{}, ignore, eps);
        CHECK(cross_entropy(logits, target, o).item() == doctest::Approx(ref.mean).epsilon(1e-12));
        o.reduction = Reduction::sum;
        CHECK(cross_entropy(logits, target, o).item() == doctest::Approx(ref.sum).epsilon(1e-12));
        o.reduction = Reduction::none;
        Tensor none = cross_entropy(logits, target, o);
        CHECK(none.shape() == Shape{n});
        check_close(values(none), ref.none, 1e-12);
        if (ignore == 1) CHECK(values(none)[1] == 0.0);
        if (eps == 0.0) {  // nll_loss on log-probabilities is the same loss
          o.reduction = Reduction::mean;
          CHECK(nll_loss(log_softmax(logits, 1), target, o).item() == doctest::Approx(ref.mean).epsilon(1e-12));
        }
      }
}

TEST_CASE("cross_entropy with spatial dims and probability targets") {
  const int64_t n = 2, classes = 3, d = 4;
  Tensor logits = random_tensor({n, classes, d}, 31, DType::f64, -2.0, 2.0);
  std::vector<int64_t> t = {0, 2, 1, 1, 2, 2, 0, 1};
  CrossEntropyOptions o;
  o.ignore_index = 2;
  o.label_smoothing = 0.1;
  CeRef ref = ce_reference(values(logits), n, classes, d, t, {}, {}, 2, 0.1);
  CHECK(cross_entropy(logits, tensor(t, {n, d}), o).item() == doctest::Approx(ref.mean).epsilon(1e-12));
  o.reduction = Reduction::none;
  check_close(values(cross_entropy(logits, tensor(t, {n, d}), o)), ref.none, 1e-12);

  Tensor probs = softmax(random_tensor({n, classes, d}, 32), 1);
  std::vector<double> w = {1.0, 0.5, 3.0};
  CrossEntropyOptions p;
  p.label_smoothing = 0.25;
  p.weight = tensor(w, {classes}, DType::f64);
  CeRef pref = ce_reference(values(logits), n, classes, d, {}, values(probs), w, -100, 0.25);
  CHECK(cross_entropy(logits, probs, p).item() == doctest::Approx(pref.mean).epsilon(1e-12));
  p.reduction = Reduction::sum;
  CHECK(cross_entropy(logits, probs, p).item() == doctest::Approx(pref.sum).epsilon(1e-12));
  p.reduction = Reduction::none;
  check_close(values(cross_entropy(logits, probs, p)), pref.none, 1e-12);
}

TEST_CASE("cross_entropy gradient is softmax minus one-hot") {
  Tensor logits = random_tensor({3, 4}, 41).requires_grad_();
  std::vector<int64_t> t = {1, 3, 0};
  cross_entropy(logits, tensor(t, {3})).backward();
  std::vector<double> p = values(softmax(logits, 1)), g = values(logits.grad());
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 4; ++c)
      CHECK(g[i * 4 + c] == doctest::Approx((p[i * 4 + c] - (c == t[i] ? 1.0 : 0.0)) / 3.0).epsilon(1e-12));
}

TEST_CASE("loss errors name the op and the shapes") {
  Tensor logits = zeros({3, 4}, DType::f64);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, tensor(std::vector<int64_t>{0, 1}, {2})),
                       doctest::Contains("plateau: cross_entropy: class-index target of shape [2] does not match"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, tensor(std::vector<int64_t>{0, 4, 1}, {3})),
                       doctest::Contains("target 4 is out of range for 4 classes"), std::invalid_argument);
  CrossEntropyOptions o;
  o.weight = ones({3}, DType::f64);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, tensor(std::vector<int64_t>{0, 1, 1}, {3}), o),
                       doctest::Contains("class weight of shape [3] does not match the 4 classes"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nll_loss(logits, zeros({3, 4}, DType::f64)), doctest::Contains("plateau: nll_loss:"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(logits, zeros({4}, DType::f64)),
                       doctest::Contains("target of shape [4] must have the shape of logits [3, 4]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(logits, logits, Reduction::mean, ones({2, 3, 4}, DType::f64)),
                       doctest::Contains("pos_weight of shape [2, 3, 4] must broadcast to the target shape [3, 4]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(logits, logits, Reduction::mean, ones({3}, DType::f64)),
                       doctest::Contains("binary_cross_entropy_with_logits"), std::invalid_argument);
}

TEST_CASE("mse_loss, kl_div and binary_cross_entropy_with_logits by hand") {
  Tensor a = tensor(std::vector<double>{1.0, -2.0, 0.5, 3.0}, {2, 2}, DType::f64);
  Tensor b = tensor(std::vector<double>{0.0, 1.0, 0.5, 1.0}, {2, 2}, DType::f64);
  // squared errors 1, 9, 0, 4
  CHECK(mse_loss(a, b).item() == doctest::Approx(3.5));
  CHECK(mse_loss(a, b, Reduction::sum).item() == doctest::Approx(14.0));
  check_close(values(mse_loss(a, b, Reduction::none)), {1, 9, 0, 4});

  // kl_div(input = log q, target = p): Σ p (log p − log q); the p = 0 entry adds nothing.
  Tensor logq =
      tensor(std::vector<double>{std::log(0.25), std::log(0.75), std::log(0.5), std::log(0.5)}, {2, 2}, DType::f64);
  Tensor p = tensor(std::vector<double>{0.5, 0.5, 0.0, 1.0}, {2, 2}, DType::f64);
  std::vector<double> pointwise = {0.5 * std::log(0.5 / 0.25), 0.5 * std::log(0.5 / 0.75), 0.0, std::log(2.0)};
  check_close(values(kl_div(logq, p, Reduction::none)), pointwise, 1e-12);
  const double total = pointwise[0] + pointwise[1] + pointwise[3];
  CHECK(kl_div(logq, p).item() == doctest::Approx(total / 4));
  CHECK(kl_div(logq, p, Reduction::sum).item() == doctest::Approx(total));
  CHECK(kl_div(logq, p, Reduction::mean, false, true).item() == doctest::Approx(total / 2));
  Tensor logp =
      tensor(std::vector<double>{std::log(0.5), std::log(0.5), std::log(0.25), std::log(0.75)}, {2, 2}, DType::f64);
  CHECK(kl_div(logq, logp, Reduction::sum, true).item() ==
        doctest::Approx(pointwise[0] + pointwise[1] + 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5)));
  // The p = 0 entry has finite gradients: there the t·log t term contributes 0 and d/dt is −input.
  Tensor pr = p.clone().requires_grad_(), qr = logq.clone().requires_grad_();
  kl_div(qr, pr, Reduction::sum).backward();
  check_close(values(qr.grad()), {-0.5, -0.5, 0.0, -1.0});
  CHECK(values(pr.grad())[2] == doctest::Approx(-std::log(0.5)));
  CHECK(values(pr.grad())[3] == doctest::Approx(std::log(1.0) + 1.0 - std::log(0.5)));
  // bce: −[y log σ(x) + (1 − y) log(1 − σ(x))], with pos_weight w on the first term.
  Tensor x = tensor(std::vector<double>{0.3, -1.2, 40.0, -40.0}, {4}, DType::f64);
  Tensor y = tensor(std::vector<double>{1.0, 0.25, 0.0, 1.0}, {4}, DType::f64);
  std::vector<double> xv = values(x), yv = values(y), want, want_w;
  for (int i = 0; i < 4; ++i) {
    // log σ(x) = −log(1 + e^−x), log(1 − σ(x)) = −log(1 + e^x)
    double ls = -std::log1p(std::exp(-xv[i])), l1s = -std::log1p(std::exp(xv[i]));
    want.push_back(-(yv[i] * ls + (1 - yv[i]) * l1s));
    want_w.push_back(-(3.0 * yv[i] * ls + (1 - yv[i]) * l1s));
  }
  check_close(values(binary_cross_entropy_with_logits(x, y, Reduction::none)), want, 1e-12);
  check_close(values(binary_cross_entropy_with_logits(x, y, Reduction::none, full({4}, 3.0, DType::f64))), want_w,
              1e-12);
  CHECK(binary_cross_entropy_with_logits(x, y).item() ==
        doctest::Approx((want[0] + want[1] + want[2] + want[3]) / 4).epsilon(1e-12));
}

TEST_CASE("max_pool2d and avg_pool2d match brute force (stride, padding)") {
  Tensor x = random_tensor({2, 3, 7, 6}, 51);
  std::vector<double> xv = values(x);
  struct PoolCase {
    Pool2dOptions o;
    int64_t oh, ow;
  };
  std::vector<PoolCase> cases = {
      {{{2, 2}, {0, 0}, {0, 0}}, 3, 3}, {{{3, 3}, {2, 2}, {1, 1}}, 4, 3}, {{{3, 2}, {1, 2}, {1, 0}}, 7, 3}};
  for (const PoolCase& k : cases) {
    const int64_t kh = k.o.kernel[0], kw = k.o.kernel[1];
    const int64_t sh = k.o.stride[0] ? k.o.stride[0] : kh, sw = k.o.stride[1] ? k.o.stride[1] : kw;
    std::vector<double> want_max, want_avg;
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t i = 0; i < k.oh; ++i)
        for (int64_t j = 0; j < k.ow; ++j) {
          double m = -std::numeric_limits<double>::infinity(), s = 0;
          for (int64_t a = 0; a < kh; ++a)
            for (int64_t b = 0; b < kw; ++b) {
              int64_t h = i * sh - k.o.padding[0] + a, w = j * sw - k.o.padding[1] + b;
              if (h < 0 || h >= 7 || w < 0 || w >= 6) continue;
              m = std::max(m, xv[(p * 7 + h) * 6 + w]);
              s += xv[(p * 7 + h) * 6 + w];
            }
          want_max.push_back(m);
          want_avg.push_back(s / static_cast<double>(kh * kw));  // padding counts as zeros
        }
    Tensor ym = max_pool2d(x, k.o);
    CHECK(ym.shape() == Shape{2, 3, k.oh, k.ow});
    check_close(values(ym), want_max, 0.0);
    check_close(values(avg_pool2d(x, k.o)), want_avg, 1e-12);
  }
}

TEST_CASE("max_pool2d gradient goes to the first maximum of each window") {
  Tensor x = tensor(std::vector<double>{1, 5, 2, 0,  //
                                        5, 3, 7, 7,  //
                                        0, 0, 1, 2,  //
                                        4, 1, 2, 2},
                    {1, 1, 4, 4}, DType::f64)
                 .requires_grad_();
  Tensor y = max_pool2d(x, {});
  check_close(values(y), {5, 7, 4, 2}, 0.0);
  y.backward(tensor(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}, DType::f64));
  check_close(values(x.grad()), {0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 4, 3, 0, 0, 0}, 0.0);
  // Windows overlap with stride 1: gradients add.
  Tensor x2 = tensor(std::vector<double>{0, 1, 0, 9}, {1, 1, 1, 4}, DType::f64).requires_grad_();
  sum(max_pool2d(x2, {{1, 2}, {1, 1}, {0, 0}})).backward();
  check_close(values(x2.grad()), {0, 2, 0, 1}, 0.0);
}

TEST_CASE("max_pool2d: NaN wins (the last one), -inf windows point at their first element") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  Tensor x = tensor(std::vector<double>{1, nan, -inf, -inf,  //
                                        nan, 2, -inf, -inf},
                    {1, 1, 2, 4}, DType::f64);
  for (const Pool2dOptions& o : {Pool2dOptions{{2, 2}, {0, 0}, {0, 0}}, Pool2dOptions{{2, 2}, {1, 2}, {0, 0}}}) {
    // The second form (stride (1, 2)) takes the general path; both give the same two windows.
    Tensor xr = x.clone().requires_grad_();
    Tensor y = max_pool2d(xr, o);
    std::vector<double> v = values(y);
    REQUIRE(v.size() == 2);
    CHECK(std::isnan(v[0]));
    CHECK(v[1] == -inf);
    y.backward(tensor(std::vector<double>{1, 2}, {1, 1, 1, 2}, DType::f64));
    check_close(values(xr.grad()), {0, 0, 2, 0, 1, 0, 0, 0}, 0.0);
  }
  // With padding, the padded positions never win even against -inf.
  Tensor y = tensor(std::vector<double>{-inf, -inf, -inf, -inf}, {1, 1, 2, 2}, DType::f64).requires_grad_();
  Tensor m = max_pool2d(y, {{2, 2}, {1, 1}, {1, 1}});
  CHECK(m.shape() == Shape{1, 1, 3, 3});
  sum(m).backward();
  // Each of the 9 windows sends its gradient to its first valid element: (0,0) is that for 4 windows.
  check_close(values(y.grad()), {4, 2, 2, 1}, 0.0);
}

TEST_CASE("adaptive_avg_pool2d uses torch's windows") {
  Tensor x = random_tensor({2, 3, 5, 7}, 61);
  std::vector<double> xv = values(x), want;
  const int64_t oh = 3, ow = 4;
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        int64_t h0 = i * 5 / oh, h1 = ((i + 1) * 5 + oh - 1) / oh;
        int64_t w0 = j * 7 / ow, w1 = ((j + 1) * 7 + ow - 1) / ow;
        double s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += xv[(p * 5 + h) * 7 + w];
        want.push_back(s / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
  check_close(values(adaptive_avg_pool2d(x, {oh, ow})), want, 1e-12);
  // Global pooling is the mean over the plane.
  check_close(values(reshape(adaptive_avg_pool2d(x, {1, 1}), {2, 3})), values(mean(x, {2, 3})), 1e-12);
}

TEST_CASE("pool errors") {
  Tensor x = zeros({1, 2, 4, 4}, DType::f64);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {{2, 2}, {0, 0}, {2, 2}}),
                       doctest::Contains("plateau: max_pool2d: padding must be at most half the kernel size"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {{5, 5}, {0, 0}, {0, 0}}),
                       doctest::Contains("does not fit the input [1, 2, 4, 4]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(max_pool2d(zeros({4, 4}, DType::f64), {}), doctest::Contains("got shape [4, 4]"),
                       std::invalid_argument);
}

TEST_CASE("batch_norm normalizes with batch statistics and updates the running ones") {
  const int64_t n = 4, c = 2, l = 3;
  Tensor x = random_tensor({n, c, l}, 71, DType::f64, -2.0, 3.0);
  Tensor rm = tensor(std::vector<double>{0.5, -1.0}, {c}, DType::f64);
  Tensor rv = tensor(std::vector<double>{2.0, 3.0}, {c}, DType::f64);
  Tensor w = tensor(std::vector<double>{1.5, -0.5}, {c}, DType::f64);
  Tensor b = tensor(std::vector<double>{0.25, 1.0}, {c}, DType::f64);
  std::vector<double> xv = values(x), mu(c, 0), var(c, 0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < l; ++k) mu[ch] += xv[(i * c + ch) * l + k] / (n * l);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < l; ++k) var[ch] += std::pow(xv[(i * c + ch) * l + k] - mu[ch], 2) / (n * l);
  }
  Tensor y = batch_norm(x, rm, rv, w, b, true, 0.2, 1e-5);
  std::vector<double> want(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    int64_t ch = (i / l) % c;
    want[i] = (xv[i] - mu[ch]) / std::sqrt(var[ch] + 1e-5) * values(w)[ch] + values(b)[ch];
  }
  check_close(values(y), want, 1e-12);
  const double unbias = (n * l) / (n * l - 1.0);
  check_close(values(rm), {0.8 * 0.5 + 0.2 * mu[0], 0.8 * -1.0 + 0.2 * mu[1]}, 1e-12);
  check_close(values(rv), {0.8 * 2.0 + 0.2 * var[0] * unbias, 0.8 * 3.0 + 0.2 * var[1] * unbias}, 1e-12);

  // Eval mode uses (and leaves) the running statistics.
  std::vector<double> rmv = values(rm), rvv = values(rv);
  Tensor ye = batch_norm(x, rm, rv, w, b, false);
  for (size_t i = 0; i < xv.size(); ++i) {
    int64_t ch = (i / l) % c;
    want[i] = (xv[i] - rmv[ch]) / std::sqrt(rvv[ch] + 1e-5) * values(w)[ch] + values(b)[ch];
  }
  check_close(values(ye), want, 1e-12);
  check_close(values(rm), rmv, 0.0);

  CHECK_THROWS_WITH_AS(batch_norm(zeros({1, 2}, DType::f64), {}, {}, {}, {}, true),
                       doctest::Contains("more than 1 value per channel"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(x, {}, {}, ones({3}, DType::f64), {}, true),
                       doctest::Contains("plateau: batch_norm: weight must be [2]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(batch_norm(x, {}, {}, {}, {}, false), doctest::Contains("needs running_mean"),
                       std::invalid_argument);
}

TEST_CASE("layer_norm and group_norm match direct formulas") {
  Tensor x = random_tensor({2, 6, 3}, 81, DType::f64, -1.0, 2.0);
  std::vector<double> xv = values(x);
  // layer_norm over the last two dims (18 values per example).
  Tensor w = random_tensor({6, 3}, 82), b = random_tensor({6, 3}, 83);
  std::vector<double> wv = values(w), bv = values(b), want(xv.size());
  for (int64_t i = 0; i < 2; ++i) {
    double mu = 0, var = 0;
    for (int64_t k = 0; k < 18; ++k) mu += xv[i * 18 + k] / 18;
    for (int64_t k = 0; k < 18; ++k) var += std::pow(xv[i * 18 + k] - mu, 2) / 18;
    for (int64_t k = 0; k < 18; ++k) want[i * 18 + k] = (xv[i * 18 + k] - mu) / std::sqrt(var + 1e-5) * wv[k] + bv[k];
  }
  check_close(values(layer_norm(x, {6, 3}, w, b)), want, 1e-12);
  // group_norm with 3 groups of 2 channels (6 values per group), per-channel affine.
  Tensor gw = random_tensor({6}, 84), gb = random_tensor({6}, 85);
  std::vector<double> gwv = values(gw), gbv = values(gb);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t g = 0; g < 3; ++g) {
      const int64_t base = i * 18 + g * 6;
      double mu = 0, var = 0;
      for (int64_t k = 0; k < 6; ++k) mu += xv[base + k] / 6;
      for (int64_t k = 0; k < 6; ++k) var += std::pow(xv[base + k] - mu, 2) / 6;
      for (int64_t k = 0; k < 6; ++k) {
        int64_t ch = g * 2 + k / 3;
        want[base + k] = (xv[base + k] - mu) / std::sqrt(var + 1e-3) * gwv[ch] + gbv[ch];
      }
    }
  check_close(values(group_norm(x, 3, gw, gb, 1e-3)), want, 1e-12);
  CHECK_THROWS_WITH_AS(group_norm(x, 4), doctest::Contains("must split into num_groups = 4 equal groups"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer_norm(x, {6}), doctest::Contains("normalized_shape [6] must be a non-empty suffix"),
                       std::invalid_argument);
}

TEST_CASE("dropout scales the kept elements and replays under a seeded generator") {
  Tensor x = ones({4000}, DType::f64).requires_grad_();
  Generator g1(123);
  Tensor y = dropout(x, 0.25, true, g1);
  std::vector<double> yv = values(y);
  int64_t zeros_count = 0;
  for (double v : yv) {
    CHECK((v == 0.0 || v == doctest::Approx(1.0 / 0.75).epsilon(1e-15)));
    zeros_count += v == 0.0;
  }
  CHECK(zeros_count > 850);  // 1000 expected; 5 standard deviations is ~140
  CHECK(zeros_count < 1150);
  Generator g2(123);
  CHECK(values(dropout(x, 0.25, true, g2)) == yv);
  Generator g3(124);
  CHECK(values(dropout(x, 0.25, true, g3)) != yv);
  // The gradient is the same mask, scaled.
  sum(y).backward();
  CHECK(values(x.grad()) == yv);
  // Identity when not training or p = 0, zeros for p = 1, errors outside [0, 1].
  CHECK(dropout(x, 0.5, false, g1).is_same(x));
  CHECK(dropout(x, 0.0, true, g1).is_same(x));
  CHECK(sum(abs(dropout(x, 1.0, true, g1))).item() == 0.0);
  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true, g1), doctest::Contains("plateau: dropout probability p must be in [0, 1]"),
                       std::invalid_argument);
}

TEST_CASE("embedding picks rows and accumulates their gradients") {
  Tensor w = random_tensor({5, 3}, 91).requires_grad_();
  Tensor idx = tensor(std::vector<int64_t>{4, 0, 4, 2}, {2, 2});
  Tensor y = embedding(w, idx);
  CHECK(y.shape() == Shape{2, 2, 3});
  std::vector<double> wv = values(w), yv = values(y);
  const int64_t rows[] = {4, 0, 4, 2};
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < 3; ++k) CHECK(yv[r * 3 + k] == wv[rows[r] * 3 + k]);
  sum(y).backward();
  check_close(values(w.grad()), {1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2}, 0.0);
  CHECK_THROWS_WITH_AS(embedding(w, tensor(std::vector<int64_t>{1, 5}, {2})),
                       doctest::Contains("plateau: embedding index 5 is out of range for a weight of 5 rows"),
                       std::out_of_range);
}
