#pragma once
// Shape and indexing ops. Views (view, permute, transpose, expand, squeeze, unsqueeze, slice) share
// storage with their input.
#include <vector>

#include "core/tensor.h"

namespace plateau {

Tensor view(const Tensor& x, const Shape& shape);     // needs compatible strides; one -1 allowed
Tensor reshape(const Tensor& x, const Shape& shape);  // a view when possible, else a copy
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor expand(const Tensor& x, const Shape& shape);  // -1 keeps a dim
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x);  // every size-1 dim
Tensor unsqueeze(const Tensor& x, int64_t dim);
// Elements start, start+step, ... < end along dim (end clamped to the size).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
// Gradient of slice: zeros of input_shape with g written at the sliced positions.
Tensor slice_backward(const Tensor& g, const Shape& input_shape, int64_t dim, int64_t start, int64_t end, int64_t step);
Tensor cat(const TensorList& tensors, int64_t dim = 0);
Tensor stack(const TensorList& tensors, int64_t dim = 0);
// Constant padding: pads = {last_dim_before, last_dim_after, second_last_before, ...} as in torch.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// self with source's slices added at positions index along dim (the gradient of index_select).
Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
Tensor one_hot(const Tensor& indices, int64_t num_classes);  // i64 in, i64 out
// A copy into fresh contiguous storage (gradient: identity).
Tensor clone(const Tensor& x);
// Type conversion; differentiable between floating types.
Tensor to_dtype(const Tensor& x, DType dtype);
// x's values on `device` (x itself when it is there already); recorded: gradients flow back across.
Tensor to_device(const Tensor& x, Device device);

}  // namespace plateau
