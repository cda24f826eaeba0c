#pragma once
// Random tensors from counter-based generators (see core/random/generator.h). Element i of a draw
// depends only on the generator's key and counter, never on the thread count.
#include "core/random/generator.h"
#include "core/tensor.h"

namespace plateau {

// Draws land on `device`; a CUDA draw gives the same numbers as the CPU draw from the same generator state.
Tensor uniform(const Shape& shape, double low = 0.0, double high = 1.0, DType dtype = DType::f32,
               Generator& generator = default_generator(), Device device = Device::cpu());
Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = DType::f32,
              Generator& generator = default_generator(), Device device = Device::cpu());
// Each element is 1 with probability p[i] (a tensor of probabilities), as p's dtype, on p's device.
Tensor bernoulli(const Tensor& p, Generator& generator = default_generator());
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Generator& generator = default_generator(),
                 Device device = Device::cpu());
// Integers uniform in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& generator = default_generator(),
               Device device = Device::cpu());
Tensor randperm(int64_t n, Generator& generator = default_generator());

}  // namespace plateau
