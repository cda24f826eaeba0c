// Default initialisation of each layer type (PyTorch's rules) and the nn::init functions: bounds,
// and sample statistics within 3% of the analytic value (layers large enough that 3% is ≥ 4 standard
// errors of the sample std).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;

namespace {

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
  int64_t n = 0;
};

Stats stats(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  Stats s;
  s.n = static_cast<int64_t>(v.size());
  for (double x : v) {
    s.mean += x;
    s.max_abs = std::max(s.max_abs, std::abs(x));
  }
  s.mean /= s.n;
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / (s.n - 1));
  return s;
}

// Uniform on ±bound: every |w| ≤ bound, the largest close to it, std bound/√3 within 3%, mean ≈ 0.
void check_uniform(const Tensor& t, double bound, const std::string& what) {
  INFO(what << " (" << t.numel() << " values, bound " << bound << ")");
  Stats s = stats(t);
  CHECK(s.max_abs <= bound);
  CHECK(s.max_abs >= 0.99 * bound);
  CHECK(s.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.03));
  CHECK(std::abs(s.mean) <= 5 * bound / std::sqrt(3.0 * s.n));
}

void check_normal(const Tensor& t, double mean, double std, const std::string& what) {
  INFO(what << " (" << t.numel() << " values)");
  Stats s = stats(t);
  CHECK(s.std == doctest::Approx(std).epsilon(0.03));
  CHECK(std::abs(s.mean - mean) <= 5 * std / std::sqrt(static_cast<double>(s.n)));
}

void check_constant(const Tensor& t, double value, const std::string& what) {
  INFO(what);
  std::vector<double> v = t.to_vector<double>();
  CHECK(std::all_of(v.begin(), v.end(), [&](double x) { return x == value; }));
}

}  // namespace

TEST_CASE("nn: Linear and Conv2d default init is uniform on ±1/√fan_in (weights and biases)") {
  manual_seed(11);
  nn::Linear linear(64, 4096);  // weight 262,144 values, bias 4,096
  check_uniform(linear.weight, 1.0 / 8.0, "Linear.weight");
  check_uniform(linear.bias, 1.0 / 8.0, "Linear.bias");
  CHECK(linear.weight.requires_grad());

  nn::Conv2d conv(8, 4096, 3);  // fan_in 8·3·3 = 72
  check_uniform(conv.weight, 1.0 / std::sqrt(72.0), "Conv2d.weight");
  check_uniform(conv.bias, 1.0 / std::sqrt(72.0), "Conv2d.bias");
  // Grouped: fan_in counts the channels of one group, 16/4·3·3 = 36.
  nn::Conv2d grouped(16, 512, 3, {.groups = 4}, false);
  CHECK(grouped.weight.shape() == Shape{512, 4, 3, 3});
  CHECK_FALSE(grouped.bias.defined());
  check_uniform(grouped.weight, 1.0 / 6.0, "grouped Conv2d.weight");
}

TEST_CASE("nn: Embedding is N(0, 1); MultiheadAttention in_proj is Xavier-uniform with zero biases") {
  manual_seed(12);
  nn::Embedding embedding(1000, 64);
  check_normal(embedding.weight, 0.0, 1.0, "Embedding.weight");

  nn::MultiheadAttention attn(256, 8);
  // in_proj_weight [768, 256]: bound √(6 / (256 + 768)).
  check_uniform(attn.in_proj_weight, std::sqrt(6.0 / 1024.0), "in_proj_weight");
  check_constant(attn.in_proj_bias, 0.0, "in_proj_bias");
  check_constant(attn.out_proj->bias, 0.0, "out_proj.bias");
  check_uniform(attn.out_proj->weight, 1.0 / 16.0, "out_proj.weight");
}

TEST_CASE("nn: norm layers start with weight 1, bias 0 and running statistics 0 and 1") {
  nn::BatchNorm2d bn(6);
  check_constant(bn.weight, 1.0, "BatchNorm.weight");
  check_constant(bn.bias, 0.0, "BatchNorm.bias");
  check_constant(bn.running_mean, 0.0, "running_mean");
  check_constant(bn.running_var, 1.0, "running_var");
  CHECK(bn.num_batches_tracked.dtype() == DType::i64);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 0);
  nn::LayerNorm ln(Shape{3, 4});
  CHECK(ln.weight.shape() == Shape{3, 4});
  check_constant(ln.weight, 1.0, "LayerNorm.weight");
  check_constant(ln.bias, 0.0, "LayerNorm.bias");
  nn::GroupNorm gn(2, 6);
  check_constant(gn.weight, 1.0, "GroupNorm.weight");
  check_constant(gn.bias, 0.0, "GroupNorm.bias");
  nn::BatchNorm1d plain(4, {.affine = false, .track_running_stats = false});
  CHECK(plain.named_parameters().empty());
  CHECK(plain.named_buffers().empty());
}

TEST_CASE("nn: init functions follow their formulas, fill in place and replay from the generator") {
  using namespace nn::init;
  CHECK(calculate_gain(Nonlinearity::linear) == 1.0);
  CHECK(calculate_gain(Nonlinearity::tanh) == doctest::Approx(5.0 / 3.0));
  CHECK(calculate_gain(Nonlinearity::relu) == doctest::Approx(std::sqrt(2.0)));
  CHECK(calculate_gain(Nonlinearity::leaky_relu, 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
  CHECK(calculate_fan_in_and_fan_out(empty({64, 32, 3, 3})) == std::pair<int64_t, int64_t>{288, 576});
  testing::check_error([] { calculate_fan_in_and_fan_out(empty({5})); }, {"at least 2 dims", "[5]"});

  Generator gen(3);
  // A parameter that requires grad is filled in place: the same storage, no graph.
  Tensor w = empty({512, 256}).requires_grad_();
  Tensor same = kaiming_uniform_(w, 0.0, FanMode::fan_in, Nonlinearity::relu, gen);
  CHECK(same.is_same(w));
  CHECK(w.is_leaf());
  check_uniform(w, std::sqrt(6.0 / 256.0), "kaiming_uniform_ (fan_in, relu)");
  Tensor conv = empty({64, 32, 3, 3}, DType::f64);  // fan_out = 64·9 = 576
  kaiming_normal_(conv, 0.0, FanMode::fan_out, Nonlinearity::relu, gen);
  check_normal(conv, 0.0, std::sqrt(2.0 / 576.0), "kaiming_normal_ (fan_out, relu)");
  kaiming_uniform_(w, std::sqrt(5.0), FanMode::fan_in, Nonlinearity::leaky_relu, gen);
  check_uniform(w, 1.0 / 16.0, "kaiming_uniform_ (a = √5): PyTorch's layer default");

  xavier_uniform_(w, 2.0, gen);
  check_uniform(w, 2.0 * std::sqrt(6.0 / 768.0), "xavier_uniform_ (gain 2)");
  xavier_normal_(w, 1.0, gen);
  check_normal(w, 0.0, std::sqrt(2.0 / 768.0), "xavier_normal_");
  normal_(w, 2.0, 3.0, gen);
  check_normal(w, 2.0, 3.0, "normal_(2, 3)");
  uniform_(w, -1.0, 3.0, gen);
  Stats s = stats(w);
  CHECK(s.mean == doctest::Approx(1.0).epsilon(0.01));
  CHECK(s.std == doctest::Approx(4.0 / std::sqrt(12.0)).epsilon(0.03));
  CHECK(stats(w - 1.0).max_abs <= 2.0);
  zeros_(w);
  check_constant(w, 0.0, "zeros_");
  ones_(w);
  check_constant(w, 1.0, "ones_");

  // The same generator state gives the same values; the default generator is used when none is given.
  Generator a(9), b(9);
  CHECK(xavier_uniform_(empty({8, 8}), 1.0, a).to_vector<float>() ==
        xavier_uniform_(empty({8, 8}), 1.0, b).to_vector<float>());
  manual_seed(4);
  Tensor first = normal_(empty({16}));
  manual_seed(4);
  CHECK(normal_(empty({16})).to_vector<float>() == first.to_vector<float>());
  testing::check_error([] { zeros_(empty({2}, DType::i64)); }, {"init::constant_", "floating", "i64"});
}
