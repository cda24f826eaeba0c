// Random draws. Element i of a draw uses Philox block (offset + i) of the generator's stream, so a
// draw is the same on every thread count and device, and the generator advances by numel blocks.
#include "core/ops/random.h"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "core/autograd/registry.h"
#include "core/backend/cpu/loops.h"
#include "core/backend/cuda/kernels.h"
#include "core/ops/ops.h"
#include "core/threads.h"

namespace plateau {

namespace {

constexpr int64_t grain = 1 << 14;

template <typename F>
void draw(const Tensor& out, Generator& gen, F element) {
  uint64_t first = gen.advance(static_cast<uint64_t>(out.numel()));
  PLATEAU_DISPATCH_ALL(out.dtype(), "random draw", {
    scalar_t* p = out.data<scalar_t>();
    parallel_for(out.numel(), grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) p[i] = static_cast<scalar_t>(element(gen.block(first + i), i));
    });
  });
}

using cuda::Draw;

// The CUDA twin of draw(): the same Philox blocks, turned into values by the same transforms.
Tensor draw_on_device(const Tensor& out, Generator& gen, Draw kind, double a, double b = 0, int64_t low = 0,
                      uint64_t range = 1, const Tensor& probs = {}) {
  cuda::DrawParams params;
  params.seed = gen.seed();
  params.stream = gen.stream();
  params.first = gen.advance(static_cast<uint64_t>(out.numel()));
  params.a = a;
  params.b = b;
  params.low = low;
  params.range = range;
#if PLATEAU_CUDA
  cuda::random_draw(kind, params, out, probs);
#else
  (void)kind, (void)probs;  // unreachable: without CUDA no tensor lives on a device
#endif
  return out;
}

void check_floating(DType dtype, const char* op) {
  if (!is_floating(dtype))
    throw std::invalid_argument(std::string("plateau: ") + op + " draws floating tensors, got dtype " +
                                dtype_name(dtype));
}

}  // namespace

// uniform: low + (high − low)·u, u in [0, 1) (24 bits for f32, 53 for f64)
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator& gen, Device device) {
  check_floating(dtype, "uniform");
  if (!(low <= high))
    throw std::invalid_argument("plateau: uniform needs low <= high, got " + std::to_string(low) + " and " +
                                std::to_string(high));
  Tensor out = empty(shape, dtype, device);
  if (device.is_cuda()) return draw_on_device(out, gen, Draw::uniform, low, high);
  bool f32 = dtype == DType::f32;
  draw(out, gen, [=](std::array<uint32_t, 4> w, int64_t) { return philox_uniform(w[0], w[1], f32, low, high); });
  return out;
}

// normal: Box–Muller, z = sqrt(−2 ln(1 − u1))·cos(2π u2)
Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator& gen, Device device) {
  check_floating(dtype, "normal");
  if (!(std >= 0)) throw std::invalid_argument("plateau: normal needs std >= 0, got " + std::to_string(std));
  Tensor out = empty(shape, dtype, device);
  if (device.is_cuda()) return draw_on_device(out, gen, Draw::normal, mean, std);
  draw(out, gen, [=](std::array<uint32_t, 4> w, int64_t) {
    return philox_normal({{w[0], w[1], w[2], w[3]}}, mean, std);
  });
  return out;
}

// bernoulli: 1 where u < p
Tensor bernoulli(const Tensor& p, Generator& gen) {
  check_floating(p.dtype(), "bernoulli");
  Tensor probs_here = p.detach().to(DType::f64).contiguous();  // what the device kernel reads
  Tensor probs = probs_here.to(Device::cpu());                 // what is checked, and the CPU draws from
  const double* pp = probs.data<double>();
  for (int64_t i = 0; i < probs.numel(); ++i)
    if (!(pp[i] >= 0 && pp[i] <= 1))
      throw std::invalid_argument("plateau: bernoulli needs probabilities in [0, 1], got " + std::to_string(pp[i]) +
                                  " at element " + std::to_string(i));
  Tensor out = empty(p.shape(), p.dtype(), p.device());
  if (p.device().is_cuda()) return draw_on_device(out, gen, Draw::bernoulli_tensor, 0, 0, 0, 1, probs_here);
  draw(out, gen, [=](std::array<uint32_t, 4> w, int64_t i) { return philox_bernoulli(w[0], w[1], pp[i]); });
  return out;
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& gen, Device device) {
  check_floating(dtype, "bernoulli");
  if (!(p >= 0 && p <= 1))
    throw std::invalid_argument("plateau: bernoulli needs p in [0, 1], got " + std::to_string(p));
  Tensor out = empty(shape, dtype, device);
  if (device.is_cuda()) return draw_on_device(out, gen, Draw::bernoulli, p);
  draw(out, gen, [=](std::array<uint32_t, 4> w, int64_t) { return philox_bernoulli(w[0], w[1], p); });
  return out;
}

// randint: low + (64 random bits mod (high − low)); the bias is below 2⁻⁴⁰ for ranges under 2²⁴
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, Device device) {
  if (high <= low)
    throw std::invalid_argument("plateau: randint needs low < high, got [" + std::to_string(low) + ", " +
                                std::to_string(high) + ")");
  Tensor out = empty(shape, DType::i64, device);
  uint64_t range = static_cast<uint64_t>(high - low);
  if (device.is_cuda()) return draw_on_device(out, gen, Draw::randint, 0, 0, low, range);
  uint64_t first = gen.advance(static_cast<uint64_t>(out.numel()));
  int64_t* p = out.data<int64_t>();
  parallel_for(out.numel(), grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      auto w = gen.block(first + i);
      p[i] = philox_randint(w[0], w[1], low, range);
    }
  });
  return out;
}

// randperm: Fisher–Yates, swap i with j uniform in [0, i]
Tensor randperm(int64_t n, Generator& gen) {
  if (n < 0) throw std::invalid_argument("plateau: randperm needs n >= 0, got " + std::to_string(n));
  Tensor out = arange(n, DType::i64);
  int64_t* p = out.data<int64_t>();
  uint64_t first = gen.advance(static_cast<uint64_t>(n));
  for (int64_t i = n - 1; i > 0; --i) {
    auto w = gen.block(first + i);
    int64_t j = static_cast<int64_t>((static_cast<uint64_t>(w[0]) << 32 | w[1]) % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return out;
}

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("plateau: random check failed: " + what);
}

// Sample moments of n draws against their exact values, within 5 standard errors.
void check_moments(const Tensor& x, double mean, double var, const char* what) {
  std::vector<double> v = x.to_vector<double>();
  double m = 0, s = 0;
  for (double e : v) m += e;
  m /= static_cast<double>(v.size());
  for (double e : v) s += (e - m) * (e - m);
  s /= static_cast<double>(v.size() - 1);
  double se = std::sqrt(var / static_cast<double>(v.size()));
  require(std::abs(m - mean) < 5 * se, std::string(what) + " mean " + std::to_string(m));
  require(std::abs(s - var) < 0.05 * var, std::string(what) + " variance " + std::to_string(s));
}

}  // namespace

PLATEAU_REGISTER_OP({"uniform",
                     "no gradient",
                     {{{"1000 draws on the input's device and dtype",
                        {registry::constant({1})},
                        [](const TensorList& in) -> TensorList {
                          Generator g(11, 3);
                          return {uniform({1000}, -1, 3, in[0].dtype(), g, in[0].device())};
                        }}}},
                     false,
                     [] {
                       Generator g(3);
                       Tensor x = uniform({20000}, -1, 3, DType::f64, g);
                       check_moments(x, 1.0, 16.0 / 12.0, "uniform(-1, 3)");
                       Generator h(3);
                       require(x.to_vector<double>() == uniform({20000}, -1, 3, DType::f64, h).to_vector<double>(),
                               "same seed, same draw");
                       require(g.offset() == 20000, "generator advances by numel blocks");
                     }});

PLATEAU_REGISTER_OP({"normal",
                     "no gradient",
                     {{{"1000 draws on the input's device and dtype",
                        {registry::constant({1})},
                        [](const TensorList& in) -> TensorList {
                          Generator g(12, 1);
                          return {normal({1000}, 0.5, 2, in[0].dtype(), g, in[0].device())};
                        }}}},
                     false,
                     [] {
                       Generator g(4);
                       check_moments(normal({20000}, 2.0, 3.0, DType::f64, g), 2.0, 9.0, "normal(2, 3)");
                     }});

PLATEAU_REGISTER_OP(
    {"bernoulli",
     "no gradient",
     {{{"probabilities tensor, and p = 0.3",
        {registry::constant({8, 16}, 0, 1)},
        [](const TensorList& in) -> TensorList {
          Generator g(13);
          Tensor a = bernoulli(in[0], g);
          return {a, bernoulli({500}, 0.3, in[0].dtype(), g, in[0].device())};
        }}}},
     false,
     [] {
       Generator g(5);
       check_moments(bernoulli({20000}, 0.3, DType::f64, g), 0.3, 0.21, "bernoulli(0.3)");
       Tensor p = tensor(std::vector<double>{0, 1, 0, 1}, {4}, DType::f64);
       require(bernoulli(p, g).to_vector<double>() == std::vector<double>{0, 1, 0, 1}, "bernoulli of 0 and 1");
     }});

PLATEAU_REGISTER_OP({"randint",
                     "no gradient",
                     {{{"1000 draws in [-3, 7)",
                        {registry::constant({1})},
                        [](const TensorList& in) -> TensorList {
                          Generator g(14);
                          return {randint(-3, 7, {1000}, g, in[0].device())};
                        }}}},
                     false,
                     [] {
                       Generator g(6);
                       std::vector<int64_t> v = randint(-2, 3, {5000}, g).to_vector<int64_t>();
                       std::vector<int> counts(5, 0);
                       for (int64_t e : v) {
                         require(e >= -2 && e < 3, "randint range");
                         counts[e + 2]++;
                       }
                       for (int c : counts) require(c > 850 && c < 1150, "randint counts roughly uniform");
                     }});

PLATEAU_REGISTER_OP({"randperm",
                     "no gradient",
                     {{{"drawn on the host, moved to the input's device",
                        {registry::constant({1})},
                        [](const TensorList& in) -> TensorList {
                          Generator g(15);
                          return {randperm(50, g).to(in[0].device())};
                        }}}},
                     false,
                     [] {
                       Generator g(7);
                       std::vector<int64_t> v = randperm(100, g).to_vector<int64_t>();
                       std::vector<bool> seen(100, false);
                       for (int64_t e : v) {
                         require(e >= 0 && e < 100 && !seen[e], "randperm is a permutation");
                         seen[e] = true;
                       }
                       require(v != arange(100).to_vector<int64_t>(), "randperm shuffles");
                     }});

}  // namespace plateau
