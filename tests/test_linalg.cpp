// matmul against a brute-force triple loop in double precision, over every operand layout and sizes
// that leave partial register tiles, panels and depth blocks (the GEMM kernel's edge cases).
#include <doctest/doctest.h>

#include <cmath>

#include "plateau.h"

using namespace plateau;

namespace {

// op(a)·op(b) computed in double, from the values as stored.
std::vector<double> reference(const Tensor& a, const Tensor& b) {
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += av[i * k + p] * bv[p * n + j];
  return c;
}

// A [rows, cols] matrix whose memory is row-major, or column-major (a transposed view).
Tensor matrix(int64_t rows, int64_t cols, bool transposed, DType dtype, Generator& gen) {
  if (!transposed) return normal({rows, cols}, 0, 1, dtype, gen);
  return transpose(normal({cols, rows}, 0, 1, dtype, gen), 0, 1);
}

}  // namespace

TEST_CASE("linalg: matmul matches a brute-force loop for every layout and edge size") {
  Generator gen(5);
  // {1, k, 1}: dot products, which take their own loop (with a tail for k not a multiple of 16).
  const int64_t sizes[][3] = {{1, 1, 1},    {1, 37, 1},    {1, 4099, 1},   {5, 7, 3},
                              {13, 33, 17}, {37, 300, 45}, {130, 257, 70}, {250, 40, 530}};
  for (DType dtype : {DType::f32, DType::f64})
    for (const auto& s : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          INFO("m " << s[0] << " k " << s[1] << " n " << s[2] << " ta " << ta << " tb " << tb << " "
                    << dtype_name(dtype));
          Tensor a = matrix(s[0], s[1], ta, dtype, gen), b = matrix(s[1], s[2], tb, dtype, gen);
          std::vector<double> want = reference(a, b), got = matmul(a, b).to_vector<double>();
          double tol = dtype == DType::f32 ? 2e-5 : 1e-12, err = 0;
          for (size_t i = 0; i < want.size(); ++i)
            err = std::max(err, std::abs(got[i] - want[i]) / std::sqrt(static_cast<double>(s[1])));
          CHECK(err <= tol);
        }
}

TEST_CASE("linalg: batched matmul with broadcast batch dims matches per-matrix products") {
  Generator gen(6);
  Tensor a = normal({3, 1, 20, 40}, 0, 1, DType::f32, gen), b = normal({4, 40, 35}, 0, 1, DType::f32, gen);
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape{3, 4, 20, 35});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      Tensor ai = reshape(slice(a, 0, i, i + 1), {20, 40}), bj = reshape(slice(b, 0, j, j + 1), {40, 35});
      std::vector<double> want = reference(ai, bj);
      std::vector<double> got = reshape(slice(slice(c, 0, i, i + 1), 1, j, j + 1), {20, 35}).to_vector<double>();
      for (size_t e = 0; e < want.size(); ++e) CHECK(got[e] == doctest::Approx(want[e]).epsilon(1e-4));
    }
}

TEST_CASE("linalg: shape errors name both shapes") {
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({4, 5})), doctest::Contains("[2, 3] and [4, 5]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 5})), doctest::Contains("[4, 5]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(dot(zeros({3}), zeros({4})), doctest::Contains("[3] and [4]"), std::invalid_argument);
}

TEST_CASE("linear: values and gradients match brute-force loops at MLP sizes") {
  Generator gen(8);
  const int64_t shapes[][3] = {{300, 70, 50}, {50, 70, 300}, {128, 784, 512}};  // {n, in, out}
  for (DType dtype : {DType::f32, DType::f64})
    for (const auto& s : shapes) {
      INFO("n " << s[0] << " in " << s[1] << " out " << s[2] << " " << dtype_name(dtype));
      Tensor x = normal({s[0], s[1]}, 0, 1, dtype, gen).requires_grad_();
      Tensor w = normal({s[2], s[1]}, 0, 1, dtype, gen).requires_grad_();
      Tensor b = normal({s[2]}, 0, 1, dtype, gen).requires_grad_();
      Tensor y = linear(x, w, b);
      std::vector<double> want = reference(x.detach(), transpose(w.detach(), 0, 1)), got = y.to_vector<double>();
      std::vector<double> bv = b.to_vector<double>();
      double tol = dtype == DType::f32 ? 2e-5 : 1e-12, err = 0;
      for (int64_t i = 0; i < s[0]; ++i)
        for (int64_t j = 0; j < s[2]; ++j)
          err = std::max(err, std::abs(got[i * s[2] + j] - want[i * s[2] + j] - bv[j]) / std::sqrt(double(s[1])));
      CHECK(err <= tol);
      // Gradients of Σ y·r: dx = r W, dW = rᵀ x, db = Σ_rows r.
      Tensor r = normal(y.shape(), 0, 1, dtype, gen);
      TensorList g = grad({sum(y * r)}, {x, w, b});
      std::vector<double> gx = reference(r, w.detach()), gw = reference(transpose(r, 0, 1), x.detach());
      std::vector<double> gx_got = g[0].to_vector<double>(), gw_got = g[1].to_vector<double>();
      double ex = 0, ew = 0;
      for (size_t i = 0; i < gx.size(); ++i) ex = std::max(ex, std::abs(gx_got[i] - gx[i]) / std::sqrt(double(s[2])));
      for (size_t i = 0; i < gw.size(); ++i) ew = std::max(ew, std::abs(gw_got[i] - gw[i]) / std::sqrt(double(s[0])));
      CHECK(ex <= tol);
      CHECK(ew <= tol);
    }
}
