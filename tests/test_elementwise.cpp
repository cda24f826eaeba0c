// Elementwise ops: values against <cmath> and hand-computed references in f32 and f64, broadcasting,
// strided inputs, the fast paths of the kernels, errors, in-place updates and first derivatives.
// (gradcheck/gradgradcheck over the registry cases lives in test_registry.cpp.)
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

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Compares every element with a tolerance relative to the dtype (NaN must match NaN); one CHECK per
// call that reports the first mismatch.
void check_values(const Tensor& t, const std::vector<double>& expected, double tol) {
  std::vector<double> v = t.to_vector<double>();
  REQUIRE(v.size() == expected.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    bool ok = std::isnan(expected[i])   ? std::isnan(v[i])
              : std::isinf(expected[i]) ? v[i] == expected[i]
                                        : std::abs(v[i] - expected[i]) <= tol * (1.0 + std::abs(expected[i]));
    if (!ok && bad++ == 0) first = i;
  }
  INFO(bad << " of " << v.size() << " elements differ; first: element " << first << ", got " << (bad ? v[first] : 0.0)
           << ", expected " << (bad ? expected[first] : 0.0));
  CHECK(bad == 0);
}

double tol_for(DType d) { return d == DType::f32 ? 2e-6 : 1e-14; }

// Grad of sum(f(x)) at x (f64), via the tape.
std::vector<double> grad_of(const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& at) {
  Tensor x = tensor(at, {static_cast<int64_t>(at.size())}, DType::f64);
  x.requires_grad_();
  Tensor y = f(x);
  GradOptions go;
  go.grad_outputs = {ones_like(y)};
  return grad({y}, {x}, go)[0].to_vector<double>();
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> reference;
  std::vector<double> inputs;
};

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

std::vector<UnaryCase> unary_cases() {
  const std::vector<double> reals = {-2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 1.7, 3.0};
  const std::vector<double> positives = {0.05, 0.3, 0.5, 1.0, 1.5, 2.0, 4.0, 9.0};
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, reals},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, reals},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, positives},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double v) { return std::log1p(v); }, positives},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, positives},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double v) { return 1 / std::sqrt(v); }, positives},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::abs(v); }, reals},
      {"sign", [](const Tensor& x) { return sign(x); }, [](double v) { return double((v > 0) - (v < 0)); }, reals},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }, reals},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }, [](double v) { return v > 0 ? v : 0.1 * v; },
       reals},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, reals},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::tanh); },
       [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); }, reals},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, reals},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, reals},
      {"softplus", [](const Tensor& x) { return softplus(x); }, [](double v) { return std::log1p(std::exp(v)); },
       reals},
      {"softplus beta 2 threshold 1", [](const Tensor& x) { return softplus(x, 2.0, 1.0); },
       [](double v) { return 2 * v > 1 ? v : std::log1p(std::exp(2 * v)) / 2; }, reals},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double v) { return std::sin(v); }, reals},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double v) { return std::cos(v); }, reals},
      {"erf", [](const Tensor& x) { return erf(x); }, [](double v) { return std::erf(v); }, reals},
      {"clamp", [](const Tensor& x) { return clamp(x, -1.0, 1.5); },
       [](double v) { return std::min(std::max(v, -1.0), 1.5); }, reals},
      {"clamp min", [](const Tensor& x) { return clamp(x, 0.2, std::nullopt); },
       [](double v) { return std::max(v, 0.2); }, reals},
      {"clamp max", [](const Tensor& x) { return clamp(x, std::nullopt, 0.2); },
       [](double v) { return std::min(v, 0.2); }, reals},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, [](double v) { return v * v; }, reals},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, reals},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); }, positives},
      {"pow 1", [](const Tensor& x) { return pow(x, 1.0); }, [](double v) { return v; }, reals},
  };
}

}  // namespace

TEST_CASE("elementwise: unary ops match <cmath> in f32 and f64, contiguous and transposed") {
  for (const UnaryCase& c : unary_cases()) {
    for (DType dtype : {DType::f32, DType::f64}) {
      INFO(c.name << " " << dtype_name(dtype));
      std::vector<double> in = c.inputs;
      if (dtype == DType::f32)  // the reference sees the f32-rounded inputs
        for (double& v : in) v = static_cast<float>(v);
      std::vector<double> expected;
      for (double v : in) expected.push_back(c.reference(v));
      Tensor x = tensor(in, {2, 4}, dtype);
      Tensor y = c.op(x);
      CHECK(y.dtype() == dtype);
      CHECK(y.shape() == Shape{2, 4});
      check_values(y, expected, tol_for(dtype));
      // The same values read through a transposed (strided) view: y[j][i] = f(x[i][j]).
      Tensor xt = transpose(tensor(in, {2, 4}, dtype), 0, 1);
      REQUIRE(!xt.is_contiguous());
      std::vector<double> expected_t;
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 2; ++i) expected_t.push_back(expected[i * 4 + j]);
      Tensor yt = c.op(xt);
      CHECK(yt.shape() == Shape{4, 2});
      CHECK(yt.is_contiguous());
      check_values(yt, expected_t, tol_for(dtype));
    }
  }
}

TEST_CASE("elementwise: special values and known constants") {
  // gelu(1) = Φ(1) and the tanh form, from their closed forms.
  check_values(gelu(tensor({1.0}, {1}, DType::f64)), {0.8413447460685429}, 1e-15);
  check_values(gelu(tensor({1.0}, {1}, DType::f64), GeluApproximation::tanh), {0.8411919906082768}, 1e-15);
  // sigmoid never overflows: exactly 0 and 1 far out, 1/2 at 0.
  check_values(sigmoid(tensor({-1000.0, 0.0, 1000.0}, {3}, DType::f64)), {0.0, 0.5, 1.0}, 0);
  check_values(sigmoid(tensor({-200.0, 200.0}, {2}, DType::f32)), {0.0, 1.0}, 0);
  // softplus is x itself above the threshold (default 20), and finite far below.
  check_values(softplus(tensor({30.0, 1000.0, -1000.0}, {3}, DType::f64)), {30.0, 1000.0, 0.0}, 0);
  // NaN propagates through relu, clamp, sign, maximum and minimum.
  Tensor nan = tensor({kNan}, {1}, DType::f64);
  check_values(relu(nan), {kNan}, 0);
  check_values(clamp(nan, -1.0, 1.0), {kNan}, 0);
  check_values(sign(nan), {kNan}, 0);
  check_values(maximum(nan, tensor({1.0}, {1}, DType::f64)), {kNan}, 0);
  check_values(minimum(tensor({1.0}, {1}, DType::f64), nan), {kNan}, 0);
  // log(0) = -inf, sqrt of a negative number is NaN, 1/0 = inf.
  check_values(log(tensor({0.0}, {1}, DType::f32)), {-kInf}, 0);
  check_values(sqrt(tensor({-1.0}, {1}, DType::f64)), {kNan}, 0);
  check_values(div(tensor({1.0, -1.0}, {2}, DType::f64), 0.0), {kInf, -kInf}, 0);
}

TEST_CASE("elementwise: f32 exp, tanh, sigmoid and gelu(tanh) are within one ulp of the rounded exact value") {
  // These f32 kernels have their own vectorizable exp; check them on a dense sweep of [-110, 110]
  // (overflow, subnormal results and tiny arguments included) against double <cmath>, rounded.
  std::vector<float> v;
  for (double t = -110.0; t <= 110.0; t += 0.00731) v.push_back(static_cast<float>(t));
  for (float t = 1e-30f; t < 1.0f; t *= 1.37f) {
    v.push_back(t);
    v.push_back(-t);
  }
  Tensor x = tensor(v, {static_cast<int64_t>(v.size())});
  struct Case {
    const char* name;
    Tensor y;
    std::function<double(double)> reference;
  };
  const double k = std::sqrt(2 / M_PI);
  std::vector<Case> cases = {
      {"exp", exp(x), [](double d) { return std::exp(d); }},
      {"tanh", tanh(x), [](double d) { return std::tanh(d); }},
      {"sigmoid", sigmoid(x), [](double d) { return 1 / (1 + std::exp(-d)); }},
      {"gelu tanh", gelu(x, GeluApproximation::tanh),
       [k](double d) { return 0.5 * d * (1 + std::tanh(k * (d + 0.044715 * d * d * d))); }},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const float* y = c.y.data<float>();
    int64_t off_by_more = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      float want = static_cast<float>(c.reference(v[i]));
      float lo = std::nextafter(want, -INFINITY), hi = std::nextafter(want, INFINITY);
      if (!(y[i] >= lo && y[i] <= hi)) ++off_by_more;
    }
    CHECK(off_by_more == 0);
  }
  // Special values.
  Tensor sp = tensor(std::vector<float>{-INFINITY, INFINITY, NAN, -0.0f, 89.0f, -100.0f}, {6});
  std::vector<float> e = exp(sp).to_vector<float>(), t = tanh(sp).to_vector<float>(),
                     s = sigmoid(sp).to_vector<float>();
  CHECK(e[0] == 0.0f);
  CHECK(e[1] == INFINITY);
  CHECK(std::isnan(e[2]));
  CHECK(e[3] == 1.0f);
  CHECK(e[4] == INFINITY);                              // exp(89) overflows float
  CHECK(e[5] == static_cast<float>(std::exp(-100.0)));  // a subnormal float
  CHECK(e[5] > 0.0f);
  CHECK(t[0] == -1.0f);
  CHECK(t[1] == 1.0f);
  CHECK(std::isnan(t[2]));
  CHECK(t[3] == 0.0f);
  CHECK(std::signbit(t[3]));  // tanh(-0) = -0
  CHECK(s[0] == 0.0f);
  CHECK(s[1] == 1.0f);
  CHECK(std::isnan(s[2]));
  CHECK(s[3] == 0.5f);
}

TEST_CASE("elementwise: binary ops broadcast with numpy rules") {
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    double tol = tol_for(dtype);
    Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype);  // [[1, 2, 3], [4, 5, 6]]
    Tensor row = tensor({10, 20, 30}, {3}, dtype);
    Tensor col = tensor({-1, 2}, {2, 1}, dtype);
    check_values(add(a, row), {11, 22, 33, 14, 25, 36}, tol);
    check_values(sub(a, row), {-9, -18, -27, -6, -15, -24}, tol);
    check_values(mul(a, col), {-1, -2, -3, 8, 10, 12}, tol);
    check_values(div(a, col), {-1, -2, -3, 2, 2.5, 3}, tol);
    check_values(div(row, a), {10, 10, 10, 2.5, 4, 5}, tol);
    check_values(pow(a, col), {1, 0.5, 1.0 / 3, 16, 25, 36}, tol);
    check_values(maximum(a, tensor({3.5}, {1}, dtype)), {3.5, 3.5, 3.5, 4, 5, 6}, tol);
    check_values(minimum(col, row), {-1, -1, -1, 2, 2, 2}, tol);
    // [3, 1] with [1, 4] -> [3, 4]: an outer sum.
    Tensor c = add(tensor({0, 10, 20}, {3, 1}, dtype), tensor({1, 2, 3, 4}, {1, 4}, dtype));
    CHECK(c.shape() == Shape{3, 4});
    check_values(c, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24}, tol);
    // 0-d operands and operands of different rank.
    Tensor s = scalar_tensor(2, dtype);
    CHECK(mul(s, s).shape() == Shape{});
    check_values(mul(s, s), {4}, tol);
    Tensor r3 = add(tensor({1, 2}, {2, 1, 1}, dtype), row);
    CHECK(r3.shape() == Shape{2, 1, 3});
    check_values(r3, {11, 21, 31, 12, 22, 32}, tol);
    // Scalar forms and operators.
    check_values(add(a, 0.5), {1.5, 2.5, 3.5, 4.5, 5.5, 6.5}, tol);
    check_values(sub(a, 1.0), {0, 1, 2, 3, 4, 5}, tol);
    check_values(mul(a, -2.0), {-2, -4, -6, -8, -10, -12}, tol);
    check_values(div(a, 4.0), {0.25, 0.5, 0.75, 1, 1.25, 1.5}, tol);
    check_values(10.0 - a, {9, 8, 7, 6, 5, 4}, tol);
    check_values(2.0 * a + 1.0, {3, 5, 7, 9, 11, 13}, tol);
    check_values(-a / a, {-1, -1, -1, -1, -1, -1}, tol);
  }
}

TEST_CASE("elementwise: integer arithmetic stays exact") {
  Tensor a = tensor(std::vector<int64_t>{1, -2, 3, 4000000000000}, {2, 2});
  Tensor b = tensor(std::vector<int64_t>{5, 7}, {2});
  Tensor s = add(a, b);
  CHECK(s.dtype() == DType::i64);
  CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{6, 5, 8, 4000000000007});
  CHECK(mul(a, b).to_vector<int64_t>() == std::vector<int64_t>{5, -14, 15, 28000000000000});
  CHECK(sub(a, 1.0).to_vector<int64_t>() == std::vector<int64_t>{0, -3, 2, 3999999999999});
  CHECK(neg(a).to_vector<int64_t>() == std::vector<int64_t>{-1, 2, -3, -4000000000000});
  CHECK(abs(a).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4000000000000});
  CHECK(sign(a).to_vector<int64_t>() == std::vector<int64_t>{1, -1, 1, 1});
  CHECK(maximum(a, b).to_vector<int64_t>() == std::vector<int64_t>{5, 7, 5, 4000000000000});
  CHECK(minimum(a, b).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 7});
}

TEST_CASE("elementwise: strided and broadcast operands give the brute-force result") {
  // Shapes large enough to take every kernel path (flat, scalar, row, strided) and the parallel split.
  const int64_t n = 300, k = 257;
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    std::vector<double> av(n * k), bv(n * k), rv(k);
    for (int64_t i = 0; i < n * k; ++i) {
      av[i] = std::sin(0.37 * static_cast<double>(i));
      bv[i] = std::cos(0.11 * static_cast<double>(i)) + 2.0;
    }
    for (int64_t j = 0; j < k; ++j) rv[j] = 0.25 * static_cast<double>(j) - 7.0;
    Tensor a = tensor(av, {n, k}, dtype), b = tensor(bv, {n, k}, dtype), r = tensor(rv, {k}, dtype);
    Tensor bt = transpose(tensor(bv, {k, n}, dtype), 0, 1);  // bt[i][j] = bv[j * n + i]
    auto at = [&](const std::vector<double>& v, int64_t i) {
      return dtype == DType::f32 ? static_cast<double>(static_cast<float>(v[i])) : v[i];
    };
    std::vector<double> e_flat(n * k), e_row(n * k), e_scalar(n * k), e_strided(n * k), e_rowfirst(n * k);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) {
        int64_t f = i * k + j;
        e_flat[f] = at(av, f) * at(bv, f);
        e_row[f] = at(av, f) - at(rv, j);
        e_rowfirst[f] = at(rv, j) / at(bv, f);
        e_scalar[f] = at(av, f) + 0.5;
        e_strided[f] = at(av, f) * at(bv, j * n + i);
      }
    // f32 arithmetic rounds each result once more than the double reference.
    double tol = dtype == DType::f32 ? 1e-6 : 1e-15;
    check_values(mul(a, b), e_flat, tol);
    check_values(sub(a, r), e_row, tol);
    check_values(div(r, b), e_rowfirst, tol);
    check_values(add(a, 0.5), e_scalar, tol);
    check_values(mul(a, bt), e_strided, tol);
    check_values(mul(bt, a), e_strided, tol);
    // Strided output of a unary op over a transposed view of a large tensor.
    Tensor ea = exp(transpose(a, 0, 1));
    std::vector<double> e_exp(n * k);
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < n; ++i) e_exp[j * n + i] = std::exp(at(av, i * k + j));
    check_values(ea, e_exp, dtype == DType::f32 ? 2e-6 : 1e-14);
  }
}

TEST_CASE("elementwise: results do not depend on the thread count") {
  int before = get_num_threads();
  Tensor a = uniform({512, 300}, -2, 2, DType::f32);
  Tensor b = uniform({300}, -2, 2, DType::f32);
  Tensor at = transpose(uniform({300, 512}, -2, 2, DType::f32), 0, 1);
  set_num_threads(1);
  std::vector<float> one = add(gelu(a), b).to_vector<float>();
  std::vector<float> one_t = mul(a, at).to_vector<float>();
  set_num_threads(2);
  std::vector<float> two = add(gelu(a), b).to_vector<float>();
  std::vector<float> two_t = mul(a, at).to_vector<float>();
  set_num_threads(before);
  CHECK(one == two);
  CHECK(one_t == two_t);
}

TEST_CASE("elementwise: where selects and broadcasts all three operands") {
  Tensor cond = gt(tensor({1.0, -1.0, 2.0}, {3}, DType::f64), 0.0);  // [T, F, T]
  Tensor a = tensor({1, 2}, {2, 1}, DType::f64);
  Tensor b = tensor({-1, -2, -3, -4, -5, -6}, {2, 3}, DType::f64);
  Tensor y = where(cond, a, b);
  CHECK(y.shape() == Shape{2, 3});
  check_values(y, {1, -2, 1, 2, -5, 2}, 0);
  // Strided operands.
  Tensor bt = transpose(tensor({-1, -2, -3, -4, -5, -6}, {3, 2}, DType::f64), 0, 1);  // [[-1, -3, -5], [-2, -4, -6]]
  check_values(where(cond, a, bt), {1, -3, 1, 2, -4, 2}, 0);
  // i64 operands work too.
  Tensor yi = where(cond, tensor(std::vector<int64_t>{7}, {1}), tensor(std::vector<int64_t>{0, 1, 2}, {3}));
  CHECK(yi.to_vector<int64_t>() == std::vector<int64_t>{7, 1, 7});
}

TEST_CASE("elementwise: comparisons and logic give bool tensors") {
  for (DType dtype : {DType::f32, DType::f64, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dtype);
    Tensor b = tensor({3, 2, 1}, {3}, dtype);
    auto bools = [](const Tensor& t) {
      CHECK(t.dtype() == DType::b8);
      return t.to_vector<bool>();
    };
    CHECK(bools(eq(a, b)) == std::vector<bool>{false, true, false, false, false, false});
    CHECK(bools(ne(a, b)) == std::vector<bool>{true, false, true, true, true, true});
    CHECK(bools(lt(a, b)) == std::vector<bool>{true, false, false, false, false, false});
    CHECK(bools(le(a, b)) == std::vector<bool>{true, true, false, false, false, false});
    CHECK(bools(gt(a, b)) == std::vector<bool>{false, false, true, true, true, true});
    CHECK(bools(ge(a, b)) == std::vector<bool>{false, true, true, true, true, true});
    CHECK(bools(eq(a, 4.0)) == std::vector<bool>{false, false, false, true, false, false});
    CHECK(bools(gt(a, 4.0)) == std::vector<bool>{false, false, false, false, true, true});
    CHECK(bools(lt(a, 2.0)) == std::vector<bool>{true, false, false, false, false, false});
    CHECK(bools(ge(a, 5.0)) == std::vector<bool>{false, false, false, false, true, true});
    CHECK(bools(le(a, 1.0)) == std::vector<bool>{true, false, false, false, false, false});
  }
  // NaN compares unequal to everything, itself included.
  Tensor n = tensor({kNan, 1.0}, {2}, DType::f64);
  CHECK(eq(n, n).to_vector<bool>() == std::vector<bool>{false, true});
  CHECK(ne(n, n).to_vector<bool>() == std::vector<bool>{true, false});
  // Logic, any dtype read as "nonzero".
  Tensor m = gt(tensor({1.0, -1.0, 2.0, -2.0}, {2, 2}, DType::f32), 0.0);
  CHECK(logical_not(m).to_vector<bool>() == std::vector<bool>{false, true, false, true});
  CHECK(logical_not(tensor({0.0, 0.5}, {2}, DType::f64)).to_vector<bool>() == std::vector<bool>{true, false});
  CHECK(logical_and(m, tensor({0.0, 3.0}, {2, 1}, DType::f64)).to_vector<bool>() ==
        std::vector<bool>{false, false, true, false});
  CHECK(eq(m, logical_not(logical_not(m))).to_vector<bool>() == std::vector<bool>{true, true, true, true});
  // isfinite.
  CHECK(isfinite(tensor({1.0, kInf, -kInf, kNan}, {4}, DType::f32)).to_vector<bool>() ==
        std::vector<bool>{true, false, false, false});
  CHECK(isfinite(tensor(std::vector<int64_t>{3}, {1})).to_vector<bool>() == std::vector<bool>{true});
}

TEST_CASE("elementwise: dtype, shape and argument errors name the op and the operands") {
  Tensor f32 = zeros({2, 3}, DType::f32), f64 = zeros({2, 3}, DType::f64);
  check_error([&] { add(f32, f64); }, {"add", "f32", "f64"});
  check_error([&] { maximum(f32, f64); }, {"maximum", "f32", "f64"});
  check_error([&] { lt(f32, f64); }, {"lt", "f32", "f64"});
  check_error([&] { mul(f32, zeros({4}, DType::f32)); }, {"mul", "[2, 3]", "[4]"});
  check_error([&] { eq(f32, zeros({3, 3}, DType::f32)); }, {"eq", "[2, 3]", "[3, 3]"});
  check_error([&] { where(gt(f32, 0.0), f32, zeros({5}, DType::f32)); }, {"where", "[2, 3]", "[5]"});
  check_error([&] { where(f32, f32, f32); }, {"where", "bool"});
  check_error([&] { exp(zeros({2}, DType::i64)); }, {"exp", "i64"});
  check_error([&] { div(zeros({2}, DType::i64), zeros({2}, DType::i64)); }, {"div", "i64"});
  check_error([&] { add(gt(f32, 0.0), gt(f32, 0.0)); }, {"add", "bool"});
  check_error([&] { clamp(f32, std::nullopt, std::nullopt); }, {"clamp"});
  check_error([&] { neg(Tensor()); }, {"neg", "undefined"});
}

TEST_CASE("elementwise: in-place updates") {
  SUBCASE("add_, mul_, fill_ and copy_ write through and bump the version") {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
    uint64_t v0 = x.version();
    add_(x, tensor({1, 1, 1}, {3}, DType::f64));
    check_values(x, {2, 3, 4, 5, 6, 7}, 0);
    CHECK(x.version() == v0 + 1);
    add_(x, tensor({10, 20}, {2, 1}, DType::f64), -0.5);
    check_values(x, {-3, -2, -1, -5, -4, -3}, 0);
    mul_(x, -2.0);
    check_values(x, {6, 4, 2, 10, 8, 6}, 0);
    CHECK(x.version() == v0 + 3);
    // Writes through a view reach the base tensor, whose storage version is shared.
    Tensor xt = transpose(x, 0, 1);
    fill_(xt, 1.5);
    check_values(x, {1.5, 1.5, 1.5, 1.5, 1.5, 1.5}, 0);
    CHECK(x.version() == v0 + 4);
    // copy_ converts the dtype and broadcasts.
    copy_(x, tensor(std::vector<int64_t>{7, 8, 9}, {3}));
    check_values(x, {7, 8, 9, 7, 8, 9}, 0);
    CHECK(x.version() == v0 + 5);
    // copy_ into a transposed view.
    copy_(xt, tensor({1, 2, 3, 4, 5, 6}, {3, 2}, DType::f32));
    check_values(x, {1, 3, 5, 2, 4, 6}, 0);
  }
  SUBCASE("a source overlapping self is read before it is overwritten") {
    Tensor x = tensor({1, 2, 3, 4}, {2, 2}, DType::f64);
    add_(x, transpose(x, 0, 1));  // x + xᵀ
    check_values(x, {2, 5, 5, 8}, 0);
    add_(x, x);
    check_values(x, {4, 10, 10, 16}, 0);
  }
  SUBCASE("in-place on a leaf requiring grad is an error in grad mode, allowed under NoGradGuard") {
    Tensor w = tensor({1, 2}, {2}, DType::f64);
    w.requires_grad_();
    check_error([&] { add_(w, ones({2}, DType::f64)); }, {"add_", "leaf", "NoGradGuard"});
    check_error([&] { mul_(w, 2.0); }, {"mul_", "leaf"});
    check_error([&] { fill_(w, 0.0); }, {"fill_", "leaf"});
    check_error([&] { copy_(w, zeros({2}, DType::f64)); }, {"copy_", "leaf"});
    Tensor y = mul(w, 2.0);
    check_error([&] { add_(y, ones({2}, DType::f64)); }, {"add_", "mul"});
    {
      NoGradGuard no_grad;
      add_(w, ones({2}, DType::f64), 0.5);
    }
    check_values(w, {1.5, 2.5}, 0);
  }
  SUBCASE("errors for a source that does not fit") {
    Tensor x = zeros({2, 3}, DType::f32);
    check_error([&] { add_(x, zeros({2, 3}, DType::f64)); }, {"add_", "f32", "f64"});
    check_error([&] { add_(x, zeros({4, 2, 3}, DType::f32)); }, {"add_", "[4, 2, 3]", "[2, 3]"});
    check_error([&] { copy_(x, zeros({3, 1}, DType::f32)); }, {"copy_", "[3, 1]", "[2, 3]"});
  }
  SUBCASE("a tensor saved for backward and modified in place is detected") {
    Tensor x = tensor({0.5, 1.5}, {2}, DType::f64);
    x.requires_grad_();
    Tensor y = exp(x);  // saves its output
    {
      NoGradGuard no_grad;
      mul_(y, 2.0);
    }
    check_error([&] { y.backward(ones({2}, DType::f64)); }, {"exp", "modified in place"});
  }
}

TEST_CASE("elementwise: first derivatives match closed forms") {
  const std::vector<double> at = {-1.5, -0.4, 0.7, 2.0};
  auto check = [](const std::vector<double>& got, const std::vector<double>& expected, double tol = 1e-12) {
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(tol));
  };
  auto map = [&](double (*f)(double)) {
    std::vector<double> r;
    for (double v : at) r.push_back(f(v));
    return r;
  };
  check(grad_of([](const Tensor& x) { return exp(x); }, at), map([](double v) { return std::exp(v); }));
  check(grad_of([](const Tensor& x) { return tanh(x); }, at),
        map([](double v) { return 1 - std::tanh(v) * std::tanh(v); }));
  check(grad_of([](const Tensor& x) { return sigmoid(x); }, at),
        map([](double v) { return sigmoid_ref(v) * (1 - sigmoid_ref(v)); }));
  check(grad_of([](const Tensor& x) { return erf(x); }, at),
        map([](double v) { return 2 / std::sqrt(M_PI) * std::exp(-v * v); }));
  check(grad_of([](const Tensor& x) { return sin(x); }, at), map([](double v) { return std::cos(v); }));
  check(grad_of([](const Tensor& x) { return cos(x); }, at), map([](double v) { return -std::sin(v); }));
  check(grad_of([](const Tensor& x) { return abs(x); }, at), {-1, -1, 1, 1});
  check(grad_of([](const Tensor& x) { return relu(x); }, at), {0, 0, 1, 1});
  check(grad_of([](const Tensor& x) { return leaky_relu(x, 0.2); }, at), {0.2, 0.2, 1, 1});
  check(grad_of([](const Tensor& x) { return sign(x); }, at), {0, 0, 0, 0});
  check(grad_of([](const Tensor& x) { return pow(x, 3.0); }, at), map([](double v) { return 3 * v * v; }));
  check(grad_of([](const Tensor& x) { return mul(x, x); }, at), map([](double v) { return 2 * v; }));
  check(grad_of([](const Tensor& x) { return div(1.0 - x, x); }, at), map([](double v) { return -1 / (v * v); }));
  // Clamp passes the gradient at the bounds themselves (torch's convention): bounds -0.4 and 0.7.
  check(grad_of([](const Tensor& x) { return clamp(x, -0.4, 0.7); }, at), {0, 1, 1, 0});
  // gelu, both forms, and softplus with a threshold: values from torch 1.13 (f64).
  const std::vector<double> g3 = {-1.5, 0.7, 2.0};
  check(grad_of([](const Tensor& x) { return gelu(x); }, g3),
        {-0.1274691922299796, 0.9766141011336599, 1.085231801078197});
  check(grad_of([](const Tensor& x) { return gelu(x, GeluApproximation::tanh); }, g3),
        {-0.12771079315143308, 0.976357218656104, 1.0860992566236183});
  check(grad_of([](const Tensor& x) { return softplus(x, 2.0, 1.0); }, g3), {0.04742587317756679, 1.0, 1.0});
  // pow with a tensor exponent: d/da a^b = b a^(b-1), d/db a^b = a^b log a.
  {
    Tensor a = tensor({0.5, 2.0}, {2}, DType::f64), b = tensor({3.0, -1.5}, {2}, DType::f64);
    a.requires_grad_();
    b.requires_grad_();
    Tensor y = pow(a, b);
    GradOptions go;
    go.grad_outputs = {ones_like(y)};
    TensorList g = grad({y}, {a, b}, go);
    check(g[0].to_vector<double>(), {3 * 0.25, -1.5 * std::pow(2.0, -2.5)});
    check(g[1].to_vector<double>(), {0.125 * std::log(0.5), std::pow(2.0, -1.5) * std::log(2.0)});
  }
  // maximum/minimum split the gradient at ties; where routes it; broadcasting is summed back.
  {
    Tensor a = tensor({1, 2, 3}, {3}, DType::f64), b = tensor({3, 2, 1}, {3}, DType::f64);
    a.requires_grad_();
    b.requires_grad_();
    GradOptions go;
    go.grad_outputs = {ones({3}, DType::f64)};
    TensorList gmax = grad({maximum(a, b)}, {a, b}, go);
    check(gmax[0].to_vector<double>(), {0, 0.5, 1});
    check(gmax[1].to_vector<double>(), {1, 0.5, 0});
    TensorList gmin = grad({minimum(a, b)}, {a, b}, go);
    check(gmin[0].to_vector<double>(), {1, 0.5, 0});
    check(gmin[1].to_vector<double>(), {0, 0.5, 1});
    Tensor cond = gt(tensor({1.0, -1.0, 1.0}, {3}, DType::f64), 0.0);
    Tensor s = tensor({2.0}, {1}, DType::f64);
    s.requires_grad_();
    TensorList gw = grad({where(cond, a, mul(s, b))}, {a, s}, go);
    check(gw[0].to_vector<double>(), {1, 0, 1});
    check(gw[1].to_vector<double>(), {2});  // d/ds of s·b[1]
    // [2, 3] * [3]: the row's gradient is summed over the broadcast dim.
    Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
    GradOptions g2;
    g2.grad_outputs = {ones({2, 3}, DType::f64)};
    check(grad({mul(m, a)}, {a}, g2)[0].to_vector<double>(), {5, 7, 9});
  }
  // A second derivative through the backward rules: d²/dx² tanh(x) = -2 tanh(x)(1 - tanh²(x)).
  {
    Tensor x = tensor({0.3, -1.2}, {2}, DType::f64);
    x.requires_grad_();
    Tensor y = tanh(x);
    GradOptions go;
    go.grad_outputs = {ones_like(y)};
    go.create_graph = true;
    Tensor g = grad({y}, {x}, go)[0];
    GradOptions go2;
    go2.grad_outputs = {ones_like(g)};
    std::vector<double> h = grad({g}, {x}, go2)[0].to_vector<double>();
    for (int i = 0; i < 2; ++i) {
      double t = std::tanh(i == 0 ? 0.3 : -1.2);
      CHECK(h[i] == doctest::Approx(-2 * t * (1 - t * t)).epsilon(1e-12));
    }
  }
}

TEST_CASE("elementwise: no tape for inputs without grad, and needs_input_grad is honoured") {
  Tensor a = tensor({1, 2}, {2}, DType::f64), b = tensor({3, 4}, {2}, DType::f64);
  CHECK(!mul(a, b).requires_grad());
  b.requires_grad_();
  Tensor y = mul(a, b);
  CHECK(y.requires_grad());
  CHECK(std::string(y.grad_fn()->name()) == "mul");
  {
    NoGradGuard no_grad;
    CHECK(!mul(a, b).requires_grad());
  }
  GradOptions go;
  go.grad_outputs = {ones({2}, DType::f64)};
  CHECK(grad({y}, {b}, go)[0].to_vector<double>() == std::vector<double>{1, 2});
}
