#pragma once
// Creating tensors.
#include <vector>

#include "core/tensor.h"

namespace plateau {

Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor arange(int64_t end, DType dtype = DType::i64);
Tensor arange(double start, double end, double step, DType dtype);
Tensor eye(int64_t n, DType dtype = DType::f32);
// A tensor holding `values` (row-major) with the given shape, converted to dtype.
Tensor tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
Tensor tensor(const std::vector<int64_t>& values, const Shape& shape);  // i64
Tensor tensor(const std::vector<float>& values, const Shape& shape);    // f32

}  // namespace plateau
