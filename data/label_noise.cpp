#include "data/label_noise.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ops/factory.h"
#include "data/keys.h"

namespace plateau::data {

namespace {

// The labels as a vector, each checked to lie in [0, num_classes).
std::vector<int64_t> checked_labels(const Tensor& labels, int64_t num_classes, const char* fn) {
  if (!labels.defined() || labels.dim() != 1 || labels.dtype() != DType::i64)
    throw std::invalid_argument(
        std::string("plateau: ") + fn + " needs 1-D i64 labels, got " +
        (labels.defined() ? labels.shape().str() + " " + dtype_name(labels.dtype()) : "undefined"));
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] < 0 || y[i] >= num_classes)
      throw std::invalid_argument(std::string("plateau: ") + fn + ": label " + std::to_string(y[i]) + " at index " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
  return y;
}

NoisyLabels pack(const std::vector<int64_t>& original, std::vector<int64_t> noisy) {
  NoisyLabels out{tensor(noisy, {static_cast<int64_t>(noisy.size())}),
                  empty({static_cast<int64_t>(noisy.size())}, DType::b8)};
  bool* flipped = out.flipped.data<bool>();
  for (size_t i = 0; i < noisy.size(); ++i) flipped[i] = noisy[i] != original[i];
  return out;
}

int64_t below(uint32_t hi, uint32_t lo, int64_t n) {
  return static_cast<int64_t>((static_cast<uint64_t>(hi) << 32 | lo) % static_cast<uint64_t>(n));
}

}  // namespace

NoisyLabels symmetric_label_noise(const Tensor& labels, int64_t num_classes, double p, uint64_t seed,
                                  bool include_original) {
  if (num_classes < 2)
    throw std::invalid_argument("plateau: symmetric_label_noise needs num_classes >= 2, got " +
                                std::to_string(num_classes));
  if (!(p >= 0 && p <= 1))
    throw std::invalid_argument("plateau: symmetric_label_noise needs p in [0, 1], got " + std::to_string(p));
  std::vector<int64_t> y = checked_labels(labels, num_classes, "symmetric_label_noise");
  std::vector<int64_t> noisy = y;
  Generator gen(seed, stream_key(KeyDomain::label_noise));
  for (size_t i = 0; i < y.size(); ++i) {
    auto w = gen.block(i);
    if (!(uniform_f64(w[0], w[1]) < p)) continue;
    if (include_original) {
      noisy[i] = below(w[2], w[3], num_classes);
    } else {
      int64_t c = below(w[2], w[3], num_classes - 1);  // one of the others: skip over y
      noisy[i] = c < y[i] ? c : c + 1;
    }
  }
  return pack(y, std::move(noisy));
}

NoisyLabels transition_label_noise(const Tensor& labels, const Tensor& transition, uint64_t seed) {
  if (!transition.defined() || transition.dim() != 2 || transition.size(0) != transition.size(1) ||
      !transition.is_floating_point())
    throw std::invalid_argument(
        "plateau: transition_label_noise needs a square floating K×K matrix, got " +
        (transition.defined() ? transition.shape().str() + " " + dtype_name(transition.dtype()) : "undefined"));
  int64_t k = transition.size(0);
  std::vector<double> t = transition.to_vector<double>();
  for (int64_t r = 0; r < k; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < k; ++c) {
      double v = t[r * k + c];
      if (!(v >= 0 && v <= 1))
        throw std::invalid_argument("plateau: transition_label_noise: row " + std::to_string(r) +
                                    " of the transition matrix has entry " + std::to_string(v) + " in column " +
                                    std::to_string(c) + ", outside [0, 1]");
      sum += v;
    }
    if (!(std::abs(sum - 1.0) <= 1e-9))
      throw std::invalid_argument("plateau: transition_label_noise: row " + std::to_string(r) +
                                  " of the transition matrix sums to " + std::to_string(sum) +
                                  ", not 1 (within 1e-9): each row is the distribution of the noisy label given the "
                                  "true class (use an f64 matrix)");
  }
  std::vector<int64_t> y = checked_labels(labels, k, "transition_label_noise");
  std::vector<int64_t> noisy(y.size());
  Generator gen(seed, stream_key(KeyDomain::label_noise, 1));
  for (size_t i = 0; i < y.size(); ++i) {
    auto w = gen.block(i);
    double u = uniform_f64(w[0], w[1]);
    // Inverse CDF of row y; the last class with positive mass takes any rounding remainder.
    const double* row = &t[y[i] * k];
    int64_t j = 0, last = 0;
    double cdf = 0;
    for (; j < k; ++j) {
      if (row[j] > 0) last = j;
      cdf += row[j];
      if (u < cdf && row[j] > 0) break;
    }
    noisy[i] = j < k ? j : last;
  }
  return pack(y, std::move(noisy));
}

}  // namespace plateau::data
