#include "nn/layers/activation.h"

#include <stdexcept>
#include <string>

namespace plateau::nn {

Dropout::Dropout(double p, Generator* generator)
    : Module("Dropout"), p_(p), generator_(generator ? generator : &default_generator()) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("plateau: Dropout needs a probability p in [0, 1], got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p_, is_training(), *generator_); }

}  // namespace plateau::nn
