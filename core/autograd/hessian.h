#pragma once
// Hessian analysis of a loss, matrix-free (part of the derivative toolkit, issue 3): top
// eigenvalues by Lanczos and the trace by Hutchinson's estimator. The loss is a closure
// loss(batch) over `batches` batches: the Hessian analysed is the average of the batches'
// Hessians with respect to `params` (tensors requiring grad that the closure uses), so core
// knows no dataset. Each Hessian-vector product is a double backward per batch.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/random/generator.h"
#include "core/tensor.h"

namespace plateau {

using BatchLoss = std::function<Tensor(int64_t batch)>;

struct HessianEigen {
  std::vector<double> values;       // largest first
  std::vector<TensorList> vectors;  // unit norm over all params, shaped like params
  int64_t hessian_vector_products = 0;
};

// The k largest (algebraic) eigenvalues and their eigenvectors, by Lanczos with full
// reorthogonalization over `iterations` steps (0: min(n, 2k + 40)), from a random start drawn
// from gen. With iterations = n (the parameter count) the result is exact up to rounding.
HessianEigen hessian_top_eigen(const BatchLoss& loss, int64_t batches, const TensorList& params, int64_t k,
                               Generator& gen, int64_t iterations = 0);

struct TraceEstimate {
  double trace = 0;           // mean of zᵀHz over the probes
  double standard_error = 0;  // sample standard deviation / sqrt(probes)
  int64_t probes = 0;
};

// Hutchinson's estimator with Rademacher probes z (entries ±1 from gen): E[zᵀHz] = tr(H).
TraceEstimate hessian_trace(const BatchLoss& loss, int64_t batches, const TensorList& params, int64_t probes,
                            Generator& gen);

// H·v averaged over the batches (one double backward per batch).
TensorList batch_hvp(const BatchLoss& loss, int64_t batches, const TensorList& params, const TensorList& v);

// Eigenvalues (ascending) and eigenvectors (columns, row-major n×n) of a small symmetric matrix, by
// cyclic Jacobi rotations: the reference solver for the Lanczos tridiagonal and for tests.
void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>& values, std::vector<double>& vectors);

}  // namespace plateau
