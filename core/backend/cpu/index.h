#pragma once
// Indexing kernels (internal to core/ops). The ops check shapes, dtypes and index ranges first;
// index tensors are i64, outputs are contiguous and allocated by the caller.
#include <cstdint>

#include "core/backend/kernel_types.h"
#include "core/tensor.h"

namespace plateau::cpu {

using kernels::BadIndex;
BadIndex find_out_of_range(const Tensor& index, int64_t size);

// out[.., i, ..] = x[.., index[i], ..] along dim (out has x's shape with dim of size index.numel()).
void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// out[.., index[i], ..] += source[.., i, ..] along dim, in order of i (out is contiguous).
void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source);
// out[p] = x[p with coordinate dim replaced by index[p]] for every position p of index.
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// out[p with coordinate dim replaced by index[p]] += src[p] for every position p of index, in
// row-major order of p (out is contiguous).
void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
// out[p] = value where mask (broadcast to out's shape) is true.
void masked_fill(const Tensor& out, const Tensor& mask, double value);
// out[p, indices[p]] = 1 (out: zeros of shape indices.shape + [classes], i64).
void one_hot(const Tensor& indices, const Tensor& out);

}  // namespace plateau::cpu
