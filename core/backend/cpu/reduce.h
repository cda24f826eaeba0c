#pragma once
// Reduction kernels (internal to core/ops). Outputs are contiguous and allocated by the caller with
// x's shape where every reduced dim has size 1 (the keepdim shape). Chunking depends only on the
// problem size, so results are bit-identical for every thread count.
#include <vector>

#include "core/tensor.h"

namespace plateau::cpu {

// out = sum of x over the dims where reduced[d] is true. Floating sums accumulate in double with
// fixed-size blocked partials; integer and bool inputs sum into an i64 out.
void sum(const Tensor& x, const std::vector<bool>& reduced, const Tensor& out);
// Position (i64) of the first maximum (largest) or minimum along dim; NaN counts as the extreme.
void arg_extreme(const Tensor& x, int64_t dim, bool largest, const Tensor& out);
// Positions of the k largest (or smallest) along dim, sorted, ties broken by the lower position;
// out is i64 with dim of size k.
void topk_indices(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out);

}  // namespace plateau::cpu
