#include "core/ops/factory.h"

#include <cmath>
#include <stdexcept>

#include "core/backend/kernels.h"

namespace plateau {

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("plateau: negative dimension in shape " + shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape.numel() * element_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  kernels::fill(t, value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(int64_t end, DType dtype) { return arange(0, static_cast<double>(end), 1, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
  if (step == 0) throw std::invalid_argument("plateau: arange with step 0");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((end - start) / step)));
  Tensor t = empty({n}, DType::f64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = start + static_cast<double>(i) * step;
  if (dtype == DType::f64) return t;
  Tensor out = empty({n}, dtype);
  kernels::copy(t, out);
  return out;
}

Tensor eye(int64_t n, DType dtype) {
  Tensor t = zeros({n, n}, DType::f64);
  for (int64_t i = 0; i < n; ++i) t.data<double>()[i * n + i] = 1.0;
  Tensor out = empty({n, n}, dtype);
  kernels::copy(t, out);
  return out;
}

static void check_count(size_t values, const Shape& shape) {
  if (static_cast<int64_t>(values) != shape.numel())
    throw std::invalid_argument("plateau: tensor(): " + std::to_string(values) + " values for shape " + shape.str() +
                                " (" + std::to_string(shape.numel()) + " elements)");
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, DType dtype) {
  check_count(values.size(), shape);
  Tensor t = empty(shape, DType::f64);
  std::copy(values.begin(), values.end(), t.data<double>());
  if (dtype == DType::f64) return t;
  Tensor out = empty(shape, dtype);
  kernels::copy(t, out);
  return out;
}

Tensor tensor(const std::vector<int64_t>& values, const Shape& shape) {
  check_count(values.size(), shape);
  Tensor t = empty(shape, DType::i64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

Tensor tensor(const std::vector<float>& values, const Shape& shape) {
  check_count(values.size(), shape);
  Tensor t = empty(shape, DType::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

}  // namespace plateau
