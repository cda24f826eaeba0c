#include "core/autograd/hessian.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace plateau {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

// Inner products and updates on lists of tensors, in f64, recording nothing.
double dot_all(const TensorList& a, const TensorList& b) {
  NoGradGuard no_grad;
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += sum(a[i].to(DType::f64) * b[i].to(DType::f64)).item();
  return s;
}

TensorList axpy(double alpha, const TensorList& x, const TensorList& y) {  // alpha·x + y
  NoGradGuard no_grad;
  TensorList out;
  for (size_t i = 0; i < x.size(); ++i) out.push_back(x[i] * alpha + y[i]);
  return out;
}

TensorList scaled(const TensorList& x, double alpha) {
  NoGradGuard no_grad;
  TensorList out;
  for (const Tensor& t : x) out.push_back(t * alpha);
  return out;
}

void check_arguments(const BatchLoss& loss, int64_t batches, const TensorList& params, const char* what) {
  if (!loss) fail(std::string(what) + ": no loss closure");
  if (batches < 1) fail(std::string(what) + ": needs at least one batch, got " + std::to_string(batches));
  if (params.empty()) fail(std::string(what) + ": no parameters");
  for (size_t i = 0; i < params.size(); ++i)
    if (!params[i].defined() || !params[i].requires_grad())
      fail(std::string(what) + ": parameter " + std::to_string(i) + " does not require grad");
}

}  // namespace

TensorList batch_hvp(const BatchLoss& loss, int64_t batches, const TensorList& params, const TensorList& v) {
  check_arguments(loss, batches, params, "batch_hvp");
  TensorList total;
  for (int64_t b = 0; b < batches; ++b) {
    Tensor l = loss(b);
    if (!l.defined() || l.numel() != 1)
      fail("batch_hvp: the loss of batch " + std::to_string(b) + " must be a scalar, got shape " +
           (l.defined() ? l.shape().str() : std::string("undefined")));
    GradOptions create;
    create.create_graph = true;
    create.allow_unused = true;
    TensorList g = grad({l}, params, create);
    Tensor gv;
    for (size_t i = 0; i < params.size(); ++i)
      if (g[i].defined() && g[i].requires_grad()) gv = gv.defined() ? gv + sum(g[i] * v[i]) : sum(g[i] * v[i]);
    TensorList hv(params.size());
    if (gv.defined()) {
      GradOptions opt;
      opt.allow_unused = true;
      hv = grad({gv}, params, opt);
    }
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor h = hv[i].defined() ? hv[i] : zeros_like(params[i]);
      if (total.size() < params.size())
        total.push_back(h);
      else
        total[i] = total[i] + h;
    }
  }
  return scaled(total, 1.0 / static_cast<double>(batches));
}

void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>& values, std::vector<double>& vectors) {
  vectors.assign(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-30) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        if (std::abs(a[p * n + q]) < 1e-300) continue;
        // The rotation zeroing a[p][q]: tan 2θ = 2 a_pq / (a_qq − a_pp), taking the smaller angle.
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p, q
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  // Sort ascending, permuting the eigenvector columns with the values.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[x * n + x] < a[y * n + y]; });
  std::vector<double> sorted_vectors(n * n);
  values.resize(n);
  for (int64_t j = 0; j < n; ++j) {
    values[j] = a[order[j] * n + order[j]];
    for (int64_t k = 0; k < n; ++k) sorted_vectors[k * n + j] = vectors[k * n + order[j]];
  }
  vectors = sorted_vectors;
}

HessianEigen hessian_top_eigen(const BatchLoss& loss, int64_t batches, const TensorList& params, int64_t k,
                               Generator& gen, int64_t iterations) {
  check_arguments(loss, batches, params, "hessian_top_eigen");
  int64_t n = 0;
  for (const Tensor& p : params) n += p.numel();
  if (k < 1 || k > n)
    fail("hessian_top_eigen: k must be in [1, " + std::to_string(n) + "] (the parameter count), got " +
         std::to_string(k));
  int64_t m = iterations > 0 ? std::min(iterations, n) : std::min(n, 2 * k + 40);
  if (m < k)
    fail("hessian_top_eigen: " + std::to_string(m) + " Lanczos iterations cannot give " + std::to_string(k) +
         " eigenvalues");
  HessianEigen result;
  // Lanczos: an orthonormal basis q_0.. of the Krylov space in which H is tridiagonal (alpha, beta).
  std::vector<TensorList> q;
  std::vector<double> alpha, beta;
  TensorList start;
  {
    NoGradGuard no_grad;
    for (const Tensor& p : params) start.push_back(normal(p.shape(), 0, 1, p.dtype(), gen));
  }
  q.push_back(scaled(start, 1.0 / std::sqrt(dot_all(start, start))));
  for (int64_t j = 0; j < m; ++j) {
    TensorList w = batch_hvp(loss, batches, params, q[j]);
    ++result.hessian_vector_products;
    alpha.push_back(dot_all(q[j], w));
    // Full reorthogonalization, twice: rounding otherwise brings back converged directions.
    for (int pass = 0; pass < 2; ++pass)
      for (const TensorList& qi : q) w = axpy(-dot_all(qi, w), qi, w);
    double b = std::sqrt(dot_all(w, w));
    if (j + 1 == m || b < 1e-10 * std::max(1.0, std::abs(alpha.back()))) break;  // invariant subspace found
    beta.push_back(b);
    q.push_back(scaled(w, 1.0 / b));
  }
  int64_t size = static_cast<int64_t>(alpha.size());
  if (size < k)
    fail("hessian_top_eigen: the Krylov space closed after " + std::to_string(size) + " steps, fewer than k = " +
         std::to_string(k) + "; the Hessian has fewer distinct eigenvalues, or pass a new generator");
  std::vector<double> t(size * size, 0.0), values, vectors;
  for (int64_t i = 0; i < size; ++i) {
    t[i * size + i] = alpha[i];
    if (i + 1 < size) t[i * size + i + 1] = t[(i + 1) * size + i] = beta[i];
  }
  symmetric_eigen(t, size, values, vectors);
  NoGradGuard no_grad;
  for (int64_t e = 0; e < k; ++e) {
    int64_t col = size - 1 - e;  // largest first
    result.values.push_back(values[col]);
    TensorList v = scaled(q[0], vectors[0 * size + col]);
    for (int64_t j = 1; j < size; ++j) v = axpy(vectors[j * size + col], q[j], v);
    result.vectors.push_back(scaled(v, 1.0 / std::sqrt(dot_all(v, v))));
  }
  return result;
}

TraceEstimate hessian_trace(const BatchLoss& loss, int64_t batches, const TensorList& params, int64_t probes,
                            Generator& gen) {
  check_arguments(loss, batches, params, "hessian_trace");
  if (probes < 2) fail("hessian_trace: needs at least 2 probes for a standard error, got " + std::to_string(probes));
  std::vector<double> samples;
  for (int64_t s = 0; s < probes; ++s) {
    TensorList z;
    {
      NoGradGuard no_grad;
      for (const Tensor& p : params) z.push_back(bernoulli(p.shape(), 0.5, p.dtype(), gen, p.device()) * 2.0 - 1.0);
    }
    samples.push_back(dot_all(z, batch_hvp(loss, batches, params, z)));
  }
  double mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(probes), var = 0;
  for (double x : samples) var += (x - mean) * (x - mean);
  var /= static_cast<double>(probes - 1);
  return {mean, std::sqrt(var / static_cast<double>(probes)), probes};
}

}  // namespace plateau
