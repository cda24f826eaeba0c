// Label noise: flip rates and the distribution of the new classes against their exact values,
// within 4 standard errors, on 100,000 labels.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;

namespace {

constexpr int64_t n = 100000;

Tensor cyclic_labels(int64_t count, int64_t k) {
  std::vector<int64_t> y(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) y[i] = i % k;
  return tensor(y, {count});
}

// counts[y][j]: how many labels of class y became j.
std::vector<std::vector<int64_t>> confusion(const Tensor& original, const Tensor& noisy, int64_t k) {
  std::vector<std::vector<int64_t>> counts(k, std::vector<int64_t>(k, 0));
  std::vector<int64_t> a = original.to_vector<int64_t>(), b = noisy.to_vector<int64_t>();
  for (size_t i = 0; i < a.size(); ++i) counts[a[i]][b[i]]++;
  return counts;
}

// |count − m·q| within 4 standard errors of a binomial(m, q).
void check_binomial(int64_t count, int64_t m, double q) {
  double se = std::sqrt(static_cast<double>(m) * q * (1 - q));
  CAPTURE(count);
  CAPTURE(m * q);
  CHECK(std::abs(static_cast<double>(count) - static_cast<double>(m) * q) <= 4 * se + 1e-12);
}

}  // namespace

TEST_CASE("data: symmetric label noise flips a fraction p, uniformly to the other classes") {
  const int64_t k = 10;
  const double p = 0.4;
  Tensor y = cyclic_labels(n, k);
  data::NoisyLabels noisy = data::symmetric_label_noise(y, k, p, 7);
  REQUIRE(noisy.labels.shape() == Shape({n}));
  REQUIRE(noisy.flipped.dtype() == DType::b8);
  std::vector<int64_t> a = y.to_vector<int64_t>(), b = noisy.labels.to_vector<int64_t>();
  std::vector<bool> flipped = noisy.flipped.to_vector<bool>();
  int64_t flips = 0;
  for (int64_t i = 0; i < n; ++i) {
    REQUIRE(flipped[i] == (a[i] != b[i]));
    flips += flipped[i];
  }
  check_binomial(flips, n, p);
  auto counts = confusion(y, noisy.labels, k);
  for (int64_t c = 0; c < k; ++c)
    for (int64_t j = 0; j < k; ++j)
      if (j != c) check_binomial(counts[c][j], n / k, p / (k - 1));  // each other class equally likely

  // Seeded; label i depends on its own counter block only, so a prefix of the labels gets a prefix of the noise.
  CHECK(data::symmetric_label_noise(y, k, p, 7).labels.to_vector<int64_t>() == b);
  CHECK(data::symmetric_label_noise(y, k, p, 8).labels.to_vector<int64_t>() != b);
  std::vector<int64_t> prefix =
      data::symmetric_label_noise(cyclic_labels(1000, k), k, p, 7).labels.to_vector<int64_t>();
  CHECK(prefix == std::vector<int64_t>(b.begin(), b.begin() + 1000));

  // p = 0 changes nothing; p = 1 changes every label.
  data::NoisyLabels none = data::symmetric_label_noise(y, k, 0.0, 7);
  CHECK(none.labels.to_vector<int64_t>() == a);
  CHECK(sum(none.flipped.to(DType::i64)).item<int64_t>() == 0);
  CHECK(sum(data::symmetric_label_noise(y, k, 1.0, 7).flipped.to(DType::i64)).item<int64_t>() == n);
}

TEST_CASE("data: symmetric noise drawing from all K classes keeps a replaced label with probability 1/K") {
  const int64_t k = 4;
  const double p = 0.6;
  Tensor y = cyclic_labels(n, k);
  data::NoisyLabels noisy = data::symmetric_label_noise(y, k, p, 3, /*include_original=*/true);
  auto counts = confusion(y, noisy.labels, k);
  for (int64_t c = 0; c < k; ++c)
    for (int64_t j = 0; j < k; ++j) check_binomial(counts[c][j], n / k, j == c ? 1 - p + p / k : p / k);
  // flipped marks only the labels that changed: P = p (K − 1) / K.
  check_binomial(sum(noisy.flipped.to(DType::i64)).item<int64_t>(), n, p * (k - 1) / k);
}

TEST_CASE("data: class-dependent label noise follows the transition matrix's rows") {
  Tensor t = tensor(std::vector<double>{0.7, 0.3, 0.0,  //
                                        0.1, 0.8, 0.1,  //
                                        0.0, 0.0, 1.0},
                    {3, 3}, DType::f64);
  Tensor y = cyclic_labels(n, 3);
  data::NoisyLabels noisy = data::transition_label_noise(y, t, 5);
  auto counts = confusion(y, noisy.labels, 3);
  std::vector<double> m = t.to_vector<double>();
  int64_t per_class = (n + 2) / 3;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t j = 0; j < 3; ++j) {
      int64_t rows = c == 0 ? per_class : n / 3;  // 33334, 33333, 33333
      if (m[c * 3 + j] == 0)
        CHECK(counts[c][j] == 0);  // an impossible transition never happens
      else
        check_binomial(counts[c][j], rows, m[c * 3 + j]);
    }
  std::vector<bool> flipped = noisy.flipped.to_vector<bool>();
  std::vector<int64_t> a = y.to_vector<int64_t>(), b = noisy.labels.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) REQUIRE(flipped[i] == (a[i] != b[i]));
  CHECK(data::transition_label_noise(y, eye(3, DType::f64), 5).labels.to_vector<int64_t>() == a);

  testing::check_error(
      [&] {
        data::transition_label_noise(y, tensor(std::vector<double>{1, 0, 0, 0.5, 0.4, 0, 0, 0, 1}, {3, 3}, DType::f64),
                                     0);
      },
      {"row 1 of the transition matrix sums to 0.9", "within 1e-9"});
  testing::check_error(
      [&] {
        data::transition_label_noise(y, tensor(std::vector<double>{1, 0, 0, 0, 1, 0, 1.5, -0.5, 0}, {3, 3}, DType::f64),
                                     0);
      },
      {"row 2 of the transition matrix has entry 1.5", "column 0, outside [0, 1]"});
  testing::check_error(
      [&] {
        data::transition_label_noise(y, ones({3, 2}, DType::f64), 0);
      },
      {"square floating K×K matrix, got [3, 2]"});
  testing::check_error([&] { data::transition_label_noise(cyclic_labels(5, 5), eye(3, DType::f64), 0); },
                       {"label 3 at index 3 is outside [0, 3)"});
  testing::check_error([&] { data::symmetric_label_noise(y, 3, 1.5, 0); }, {"p in [0, 1]"});
}
