#pragma once
// Label noise: the corruptions of the label-noise literature, seeded, keeping which labels changed.
#include <cstdint>

#include "core/tensor.h"

namespace plateau::data {

struct NoisyLabels {
  Tensor labels;   // i64 [N], the corrupted labels
  Tensor flipped;  // bool [N], labels != original
};

// Symmetric noise: each label, with probability p, is replaced by a class drawn uniformly from the
// other num_classes − 1 classes (from all num_classes when include_original, so a replaced label may
// stay, and `flipped` marks only the ones that changed). Label i uses counter block i of the
// generator (seed, stream_key(label_noise)): the decision from its first two words, the class from
// the last two, so the result does not depend on N's other labels.
NoisyLabels symmetric_label_noise(const Tensor& labels, int64_t num_classes, double p, uint64_t seed,
                                  bool include_original = false);

// Class-dependent noise: label y becomes class j with probability transition[y][j]. `transition` is
// a K×K row-stochastic matrix (entries in [0, 1], rows summing to 1 within 1e-9: give it as f64).
NoisyLabels transition_label_noise(const Tensor& labels, const Tensor& transition, uint64_t seed);

}  // namespace plateau::data
