#pragma once
// Reductions over given dims (negative dims count from the end) or over all elements.
#include <vector>

#include "core/tensor.h"

namespace plateau {

using Dims = std::vector<int64_t>;

struct ValuesIndices {
  Tensor values;
  Tensor indices;  // i64
};

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements; the gradient goes to the first maximum
Tensor min(const Tensor& x);
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);
// correction = 1 gives the unbiased estimate (libtorch's default), 0 the population variance.
Tensor var(const Tensor& x, const Dims& dims, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims, int64_t correction = 1, bool keepdim = false);
// p = 1, 2 or infinity (std::numeric_limits<double>::infinity()); over all elements when dims is empty.
Tensor norm(const Tensor& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);
// k largest (or smallest) along dim, sorted; values carry the gradient.
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);

// Sums `x` down to `shape` (the inverse of broadcasting `shape` to x's shape).
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

}  // namespace plateau
