// Hessian analysis: Lanczos top eigenvalues against a dense eigendecomposition of the Hessian built
// by hessian(), Hutchinson's trace against the exact trace and its analytic Rademacher variance.
// The dense reference solver (Jacobi) is itself checked by residuals and orthonormality.
#include <doctest/doctest.h>

#include <cmath>

#include "plateau.h"

using namespace plateau;

namespace {

// A 2-4-2 tanh network whose 22 parameters live in one flat vector, on two batches of 6 points.
struct SmallModel {
  Tensor x[2], y[2];
  SmallModel() {
    Generator gen(21);
    for (int b = 0; b < 2; ++b) {
      x[b] = normal({6, 2}, 0, 1, DType::f64, gen);
      y[b] = randint(0, 2, {6}, gen);
    }
  }
  Tensor loss(const Tensor& theta, int64_t b) const {
    Tensor w1 = reshape(slice(theta, 0, 0, 8), {4, 2}), b1 = slice(theta, 0, 8, 12);
    Tensor w2 = reshape(slice(theta, 0, 12, 20), {2, 4}), b2 = slice(theta, 0, 20, 22);
    return cross_entropy(linear(tanh(linear(x[b], w1, b1)), w2, b2), y[b]);
  }
  Tensor mean_loss(const Tensor& theta) const { return (loss(theta, 0) + loss(theta, 1)) * 0.5; }
};

// Max over i of ‖A v_i − λ_i v_i‖ and of |v_iᵀ v_j − δ_ij| for a row-major n×n A.
void check_eigendecomposition(const std::vector<double>& a, int64_t n, const std::vector<double>& values,
                              const std::vector<double>& vectors, double tol) {
  double residual = 0, orthogonality = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < n; ++r) {
      double av = 0;
      for (int64_t c = 0; c < n; ++c) av += a[r * n + c] * vectors[c * n + i];
      residual = std::max(residual, std::abs(av - values[i] * vectors[r * n + i]));
    }
    for (int64_t j = 0; j < n; ++j) {
      double d = 0;
      for (int64_t r = 0; r < n; ++r) d += vectors[r * n + i] * vectors[r * n + j];
      orthogonality = std::max(orthogonality, std::abs(d - (i == j ? 1.0 : 0.0)));
    }
  }
  CHECK(residual <= tol);
  CHECK(orthogonality <= tol);
  for (int64_t i = 0; i + 1 < n; ++i) CHECK(values[i] <= values[i + 1]);
}

}  // namespace

TEST_CASE("hessian: the Jacobi solver gives an orthonormal eigenbasis with tiny residuals") {
  Generator gen(9);
  const int64_t n = 7;
  std::vector<double> a = normal({n, n}, 0, 1, DType::f64, gen).to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) a[i * n + j] = a[j * n + i];
  std::vector<double> values, vectors;
  symmetric_eigen(a, n, values, vectors);
  check_eigendecomposition(a, n, values, vectors, 1e-12);
  std::vector<double> d{3, 0, 0, 0, -1, 0, 0, 0, 2};  // a diagonal matrix: its diagonal, sorted
  symmetric_eigen(d, 3, values, vectors);
  CHECK(values == std::vector<double>{-1, 2, 3});
}

TEST_CASE("hessian: Lanczos top eigenvalues and vectors match a dense eigendecomposition") {
  SmallModel model;
  Generator gen(3);
  Tensor theta = normal({22}, 0, 0.8, DType::f64, gen).requires_grad_();
  Tensor h = hessian([&](const Tensor& t) { return model.mean_loss(t); }, theta);
  std::vector<double> hd = h.to_vector<double>(), exact, exact_vectors;
  symmetric_eigen(hd, 22, exact, exact_vectors);
  check_eigendecomposition(hd, 22, exact, exact_vectors, 1e-10);

  Generator start(5);
  auto loss = [&](int64_t b) { return model.loss(theta, b); };
  HessianEigen top = hessian_top_eigen(loss, 2, {theta}, 3, start, 22);
  REQUIRE(top.values.size() == 3);
  for (int e = 0; e < 3; ++e) {
    double want = exact[21 - e];
    CHECK(std::abs(top.values[e] - want) <= 1e-6 * std::abs(want));
    // H v = λ v for the returned unit vector.
    Tensor v = top.vectors[e][0];
    CHECK(norm(v).item() == doctest::Approx(1.0));
    CHECK(norm(matmul(h, v) - v * top.values[e]).item() <= 1e-6 * std::abs(top.values[e]));
  }
  // The Krylov space may close early (softmax is invariant to a shift of both logits: H is singular).
  CHECK(top.hessian_vector_products >= 3);
  CHECK(top.hessian_vector_products <= 22);
  CHECK_THROWS_WITH_AS(hessian_top_eigen(loss, 2, {theta}, 23, start), doctest::Contains("k must be in [1, 22]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(hessian_top_eigen(loss, 0, {theta}, 1, start), doctest::Contains("at least one batch"),
                       std::invalid_argument);
}

TEST_CASE("hessian: Hutchinson trace within 3 standard errors; its error near the Rademacher value") {
  SmallModel model;
  Generator gen(4);
  Tensor theta = normal({22}, 0, 0.8, DType::f64, gen).requires_grad_();
  std::vector<double> h = hessian([&](const Tensor& t) { return model.mean_loss(t); }, theta).to_vector<double>();
  double trace = 0, frobenius = 0, diagonal = 0;
  for (int64_t i = 0; i < 22; ++i) {
    trace += h[i * 22 + i];
    diagonal += h[i * 22 + i] * h[i * 22 + i];
    for (int64_t j = 0; j < 22; ++j) frobenius += h[i * 22 + j] * h[i * 22 + j];
  }
  const int64_t probes = 400;
  Generator probe_gen(11);
  TraceEstimate t = hessian_trace([&](int64_t b) { return model.loss(theta, b); }, 2, {theta}, probes, probe_gen);
  CHECK(t.probes == probes);
  CHECK(std::abs(t.trace - trace) <= 3 * t.standard_error);
  double analytic_se = std::sqrt(2 * (frobenius - diagonal) / probes);  // Var(zᵀHz) = 2 Σ_{i≠j} H_ij²
  CHECK(std::abs(t.standard_error - analytic_se) <= 0.2 * analytic_se);
}

TEST_CASE("hessian: batch_hvp averages the batches' Hessian-vector products") {
  SmallModel model;
  Generator gen(6);
  Tensor theta = normal({22}, 0, 0.8, DType::f64, gen).requires_grad_();
  Tensor v = normal({22}, 0, 1, DType::f64, gen);
  Tensor hv = batch_hvp([&](int64_t b) { return model.loss(theta, b); }, 2, {theta}, {v})[0];
  Tensor h = hessian([&](const Tensor& t) { return model.mean_loss(t); }, theta);
  std::vector<double> got = hv.to_vector<double>(), want = matmul(h, v).to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-10));
}
