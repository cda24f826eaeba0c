// Plateau's side of `make bench` (experiments/bench/README.md explains each figure).
//
//   bench_plateau overhead [--calls C] [--batches B] [--keep 0|1]  autograd bookkeeping per add
//   bench_plateau fma_peak [--repeats R]                            single-core f32 FMA peak
//   bench_plateau gemm [--size N] [--repeats R]                     N×N×N f32 matmul, one thread
//   bench_plateau train --model mlp_784|mnist_cnn --threads N --steps S [--warmup W]
//   bench_plateau toolkit --model mlp_784|mnist_cnn --steps S [--warmup W]  derivative toolkit, one thread
//   bench_plateau sam --model mlp_784|mnist_cnn --steps S [--warmup W] [--rounds R]  SAM family vs SGD, one thread
//
// Each subcommand prints exactly one JSON line on stdout (the fields of torch_baseline's line for
// `train`); diagnostics go to stderr. run.py runs these as subprocesses and compares.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plateau.h"

using namespace plateau;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string json_array(const std::vector<double>& v, const char* fmt = "%.4f") {
  std::string s = "[";
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, fmt, v[i]);
    s += (i ? "," : "") + std::string(buf);
  }
  return s + "]";
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr,
               "bench_plateau: %s\n"
               "usage: bench_plateau overhead [--calls C] [--batches B] [--keep 0|1]\n"
               "       bench_plateau fma_peak [--repeats R]\n"
               "       bench_plateau gemm [--size N] [--repeats R]\n"
               "       bench_plateau train --model mlp_784|mnist_cnn --threads N --steps S [--warmup W]\n"
               "       bench_plateau toolkit --model mlp_784|mnist_cnn --steps S [--warmup W]\n"
               "       bench_plateau sam --model mlp_784|mnist_cnn --steps S [--warmup W] [--rounds R]\n",
               msg.c_str());
  std::exit(2);
}

// "--name value" pairs after the subcommand; only the names in `allowed` are accepted.
std::map<std::string, std::string> parse_options(int argc, char** argv, const std::vector<std::string>& allowed) {
  std::map<std::string, std::string> opts;
  for (int i = 2; i < argc; i += 2) {
    std::string opt = argv[i];
    if (std::find(allowed.begin(), allowed.end(), opt) == allowed.end()) usage_error("unknown option '" + opt + "'");
    if (i + 1 >= argc) usage_error("missing value for " + opt);
    opts[opt] = argv[i + 1];
  }
  return opts;
}

int int_option(const std::map<std::string, std::string>& opts, const std::string& name, int fallback, int min_value) {
  auto it = opts.find(name);
  if (it == opts.end()) return fallback;
  try {
    size_t used = 0;
    int value = std::stoi(it->second, &used);
    if (used == it->second.size() && value >= min_value) return value;
  } catch (const std::exception&) {
  }
  usage_error("bad value '" + it->second + "' for " + name + " (need an integer >= " + std::to_string(min_value) + ")");
}

// ---------------------------------------------------------------------------------------------
// overhead: what recording one op costs. Both modes call add(a, b) on two 1-element f32 tensors
// that require grad; with grad mode on the call also records a node (saved inputs, edges, version
// numbers). Each result is moved into a preallocated slot so the timed region covers the op call
// itself (checks, output allocation, kernel, recording) and every call allocates fresh memory, as
// in a real forward pass where activations stay alive until backward; the results (and with them
// the recorded nodes) are freed after the clock stops, and that teardown is timed separately.
// Batches alternate between the modes so drifts in clock speed hit both alike. Batches are short
// (10³ calls, under a millisecond) so that a preemption by another process spoils few of them and
// the median discards those; 10³ live nodes is also about the graph of a large model's forward.
int run_overhead(int calls, int batches, bool keep) {
  set_num_threads(1);
  Tensor a = full({1}, 1.5).requires_grad_();
  Tensor b = full({1}, 0.25).requires_grad_();
  std::vector<Tensor> results(calls);
  auto batch = [&](bool record, double& call_ns, double& free_ns) {
    std::optional<NoGradGuard> guard;
    if (!record) guard.emplace();
    auto t0 = Clock::now();
    if (keep) {
      for (int i = 0; i < calls; ++i) results[i] = add(a, b);
    } else {
      // Each result (and its node) dies before the next call: the allocator recycles one chunk.
      for (int i = 0; i < calls; ++i) results[calls - 1] = add(a, b);
    }
    call_ns = seconds_since(t0) * 1e9 / calls;
    if (record != results[calls - 1].requires_grad()) {
      std::fprintf(stderr, "bench_plateau: overhead: add %s a node in %s mode\n",
                   record ? "did not record" : "recorded", record ? "grad" : "no-grad");
      std::exit(1);
    }
    auto t1 = Clock::now();
    for (auto& r : results) r = Tensor();
    free_ns = seconds_since(t1) * 1e9 / calls;
  };
  double warm_call, warm_free;
  for (int i = 0; i < 10; ++i) batch(true, warm_call, warm_free), batch(false, warm_call, warm_free);
  std::vector<double> grad_ns, nograd_ns, grad_free_ns, nograd_free_ns;
  for (int i = 0; i < batches; ++i) {
    double c, f;
    batch(true, c, f);
    grad_ns.push_back(c), grad_free_ns.push_back(f);
    batch(false, c, f);
    nograd_ns.push_back(c), nograd_free_ns.push_back(f);
  }
  double g = median(grad_ns), n = median(nograd_ns);
  std::printf(
      "{\"bench\":\"overhead\",\"op\":\"add\",\"keep\":%s,\"calls_per_batch\":%d,\"batches\":%d,"
      "\"grad_ns\":%.2f,\"nograd_ns\":%.2f,\"overhead_ns\":%.2f,"
      "\"grad_free_ns\":%.2f,\"nograd_free_ns\":%.2f,\"grad_batches_ns\":%s,\"nograd_batches_ns\":%s}\n",
      keep ? "true" : "false", calls, batches, g, n, g - n, median(grad_free_ns), median(nograd_free_ns),
      json_array(grad_ns, "%.2f").c_str(), json_array(nograd_ns, "%.2f").c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------
// fma_peak: CHAINS independent accumulators, each updated acc = acc·x + y once per iteration, so
// the loop is bound by FMA throughput rather than latency (latency × throughput ≤ 16 on current
// cores). acc·x + y with 0 < x < 1 converges to y/(1-x): no overflow, no denormals. The chains stay
// in registers, and without -ffast-math the compiler may not fold or reassociate the FMAs.
constexpr int kChains = 16;

template <typename Vec, Vec (*Fma)(Vec, Vec, Vec), Vec (*Set1)(float)>
double fma_loop(int64_t iterations, float& sink) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = Set1(1.0f + 0.01f * c);
  const Vec x = Set1(0.999999f), y = Set1(1e-6f);
  auto t0 = Clock::now();
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = Fma(acc[c], x, y);
  }
  double s = seconds_since(t0);
  alignas(64) float lanes[sizeof(Vec) / sizeof(float)];
  for (int c = 0; c < kChains; ++c) {
    std::memcpy(lanes, &acc[c], sizeof(Vec));
    sink += lanes[0];
  }
  return s;
}

// The widest FMA the build targets (-march=native in the default build).
#if defined(__AVX512F__)
using FmaVec = __m512;
constexpr const char* kIsa = "avx512";
FmaVec fma_vec(FmaVec a, FmaVec b, FmaVec c) { return _mm512_fmadd_ps(a, b, c); }
FmaVec set_vec(float v) { return _mm512_set1_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
using FmaVec = __m256;
constexpr const char* kIsa = "avx2";
FmaVec fma_vec(FmaVec a, FmaVec b, FmaVec c) { return _mm256_fmadd_ps(a, b, c); }
FmaVec set_vec(float v) { return _mm256_set1_ps(v); }
#else
using FmaVec = float;
constexpr const char* kIsa = "scalar";
FmaVec fma_vec(FmaVec a, FmaVec b, FmaVec c) { return std::fma(a, b, c); }
FmaVec set_vec(float v) { return v; }
#endif

int run_fma_peak(int repeats) {
  const int64_t iterations = 20'000'000;
  const int lanes = sizeof(FmaVec) / sizeof(float);
  float sink = 0;
  std::vector<double> gflops;
  for (int r = 0; r < repeats; ++r) {
    double s = fma_loop<FmaVec, fma_vec, set_vec>(iterations, sink);
    gflops.push_back(2.0 * lanes * kChains * iterations / s / 1e9);
  }
  std::printf(
      "{\"bench\":\"fma_peak\",\"isa\":\"%s\",\"lanes\":%d,\"chains\":%d,\"iterations\":%lld,"
      "\"gflops\":%.2f,\"repeats_gflops\":%s,\"sink\":%g}\n",
      kIsa, lanes, kChains, static_cast<long long>(iterations), *std::max_element(gflops.begin(), gflops.end()),
      json_array(gflops, "%.2f").c_str(), sink);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// gemm: plateau::matmul of two size×size f32 matrices on one thread (set_num_threads(1)), timed
// end to end (output allocation included, as a user sees it). FLOPs = 2·size³.
int run_gemm(int size, int repeats) {
  set_num_threads(1);
  Generator gen(1);
  Tensor a = uniform({size, size}, -1.0, 1.0, DType::f32, gen);
  Tensor b = uniform({size, size}, -1.0, 1.0, DType::f32, gen);
  Tensor c = matmul(a, b);  // warm-up: page faults of the output, packing buffers
  // Spot check one entry against a double-precision dot product, so a broken kernel cannot pass.
  {
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    double ref = 0;
    for (int k = 0; k < size; ++k) ref += double(pa[7 * size + k]) * pb[k * size + 3];
    double got = c.data<float>()[7 * size + 3];
    if (std::abs(got - ref) > 1e-3 * std::sqrt(double(size))) {
      std::fprintf(stderr, "bench_plateau: gemm: c[7, 3] = %g, expected %g\n", got, ref);
      return 1;
    }
  }
  std::vector<double> ms, gflops;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    c = matmul(a, b);
    double s = seconds_since(t0);
    ms.push_back(s * 1e3);
    gflops.push_back(2.0 * size * size * double(size) / s / 1e9);
  }
  std::printf(
      "{\"bench\":\"gemm\",\"dtype\":\"f32\",\"m\":%d,\"n\":%d,\"k\":%d,\"threads\":1,"
      "\"median_ms\":%.3f,\"gflops\":%.2f,\"times_ms\":%s}\n",
      size, size, size, median(ms), median(gflops), json_array(ms, "%.3f").c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------
// train: one SGD step (forward, cross-entropy, gradients of every parameter, p -= lr·g) of the two
// reference models at batch 128 on 28×28 inputs, the same step torch_baseline times.
constexpr int64_t kBatch = 128;
constexpr int64_t kClasses = 10;

struct Model {
  std::string name;
  TensorList params;
  std::function<Tensor(const Tensor&)> forward;
};

// PyTorch's default init for Linear and Conv2d: weight and bias uniform in ±1/√fan_in.
Tensor init_param(const Shape& shape, int64_t fan_in, Generator& gen) {
  double bound = 1.0 / std::sqrt(double(fan_in));
  return uniform(shape, -bound, bound, DType::f32, gen).requires_grad_();
}

Model make_model(const std::string& name, Generator& gen, int64_t& expected_params) {
  Model m{name, {}, {}};
  if (name == "mlp_784") {
    // Linear 784→512, ReLU, Linear 512→512, ReLU, Linear 512→10.
    expected_params = 669706;
    const int64_t dims[] = {784, 512, 512, kClasses};
    for (int l = 0; l < 3; ++l) {
      m.params.push_back(init_param({dims[l + 1], dims[l]}, dims[l], gen));
      m.params.push_back(init_param({dims[l + 1]}, dims[l], gen));
    }
    m.forward = [p = m.params](const Tensor& x) {
      Tensor h = flatten(x, 1);
      h = relu(linear(h, p[0], p[1]));
      h = relu(linear(h, p[2], p[3]));
      return linear(h, p[4], p[5]);
    };
  } else {
    // conv3×3 1→32, ReLU, conv3×3 32→64, ReLU (no padding), max-pool 2, flatten, Linear 9216→10.
    expected_params = 110986;
    m.params = {init_param({32, 1, 3, 3}, 9, gen),       init_param({32}, 9, gen),
                init_param({64, 32, 3, 3}, 288, gen),    init_param({64}, 288, gen),
                init_param({kClasses, 9216}, 9216, gen), init_param({kClasses}, 9216, gen)};
    m.forward = [p = m.params](const Tensor& x) {
      Tensor h = relu(conv2d(x, p[0], p[1]));
      h = relu(conv2d(h, p[2], p[3]));
      h = flatten(max_pool2d(h, Pool2dOptions{}), 1);
      return linear(h, p[4], p[5]);
    };
  }
  return m;
}

int run_train(const std::string& model_name, int threads, int steps, int warmup) {
  set_num_threads(threads);
  Generator gen(0);
  int64_t expected_params = 0;
  Model model = make_model(model_name, gen, expected_params);
  int64_t n_params = 0;
  for (const Tensor& p : model.params) n_params += p.numel();
  if (n_params != expected_params) {
    std::fprintf(stderr, "bench_plateau: %s has %lld parameters, expected %lld\n", model_name.c_str(),
                 static_cast<long long>(n_params), static_cast<long long>(expected_params));
    return 1;
  }
  // Fixed-seed data; the input does not require grad.
  Tensor x = normal({kBatch, 1, 28, 28}, 0.0, 1.0, DType::f32, gen);
  Tensor y = randint(0, kClasses, {kBatch}, gen);
  const double lr = 0.01;

  Tensor loss;
  auto train_step = [&] {
    loss = cross_entropy(model.forward(x), y);
    TensorList grads = grad({loss}, model.params);
    NoGradGuard no_grad;
    for (size_t i = 0; i < grads.size(); ++i) add_(model.params[i], grads[i], -lr);
  };

  for (int i = 0; i < warmup; ++i) train_step();
  double first_loss = loss.defined() ? loss.item() : NAN;
  std::vector<double> times_ms;
  for (int i = 0; i < steps; ++i) {
    auto t0 = Clock::now();
    train_step();
    times_ms.push_back(seconds_since(t0) * 1e3);
  }
  double final_loss = loss.item();
  if (!std::isfinite(final_loss)) {
    std::fprintf(stderr, "bench_plateau: %s: final loss is not finite\n", model_name.c_str());
    return 1;
  }
  std::vector<double> sorted = times_ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "{\"impl\":\"plateau\",\"model\":\"%s\",\"threads\":%d,\"batch\":%lld,\"steps\":%d,"
      "\"median_ms\":%.4f,\"min_ms\":%.4f,\"loss_after_warmup\":%.6f,\"final_loss\":%.6f,"
      "\"times_ms\":%s}\n",
      model_name.c_str(), threads, static_cast<long long>(kBatch), steps, median(times_ms), sorted.front(), first_loss,
      final_loss, json_array(times_ms).c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------
// toolkit: the derivative toolkit's costs on the same models and data, one thread. Each quantity is
// timed with the forward pass included: gradient (forward + backward), Hessian-vector product
// (forward + gradient with create_graph + backward of g·v), per-example gradients and per-example
// gradient norms (forward with one loss per example + the per-example pass). Peak bytes come from
// the allocator's counter, reset before each measured forward.
int run_toolkit(const std::string& model_name, int steps, int warmup) {
  set_num_threads(1);
  Generator gen(0);
  int64_t expected_params = 0;
  Model model = make_model(model_name, gen, expected_params);
  Tensor x = normal({kBatch, 1, 28, 28}, 0.0, 1.0, DType::f32, gen);
  Tensor y = randint(0, kClasses, {kBatch}, gen);
  TensorList v;
  for (const Tensor& p : model.params) v.push_back(normal(p.shape(), 0.0, 1.0, DType::f32, gen));
  CrossEntropyOptions per_example_loss;
  per_example_loss.reduction = Reduction::none;

  auto gradient = [&] { return grad({cross_entropy(model.forward(x), y)}, model.params); };
  // As hvp() in core/autograd/functional.h does it: double backward, the gradient handed over (moved)
  // so that it is freed while g·v is differentiated.
  auto hvp_step = [&] {
    GradOptions keep;
    keep.create_graph = true;
    TensorList g = grad({cross_entropy(model.forward(x), y)}, model.params, keep);
    GradOptions along_v;
    along_v.grad_outputs = v;
    return grad(std::move(g), model.params, along_v);
  };
  auto per_example = [&] {
    return per_example_grads(cross_entropy(model.forward(x), y, per_example_loss), model.params);
  };
  auto norms = [&] {
    return TensorList{per_example_grad_norms(cross_entropy(model.forward(x), y, per_example_loss), model.params)};
  };

  // Median milliseconds, and the peak bytes held during one call (beyond what was held before it).
  auto measure = [&](const std::function<TensorList()>& fn, double& peak_bytes) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      auto t0 = Clock::now();
      TensorList out = fn();
      ms.push_back(seconds_since(t0) * 1e3);
    }
    reset_peak_host_memory();
    const int64_t before = host_memory_stats().allocated;
    { TensorList out = fn(); }
    peak_bytes = static_cast<double>(host_memory_stats().peak - before);
    return median(ms);
  };
  double grad_peak = 0, hvp_peak = 0, pe_peak = 0, norms_peak = 0;
  const double grad_ms = measure(gradient, grad_peak);
  const double hvp_ms = measure(hvp_step, hvp_peak);
  const double pe_ms = measure(per_example, pe_peak);
  const double norms_ms = measure(norms, norms_peak);

  // The per-example gradients' size, and the time to write that many bytes into memory already
  // mapped (the bound a memory-bound result cannot beat).
  int64_t pe_bytes = 0;
  for (const Tensor& p : model.params) pe_bytes += kBatch * p.numel() * 4;
  std::vector<float> buffer(static_cast<size_t>(pe_bytes / 4), 1.0f);
  std::vector<double> write_ms;
  for (int i = 0; i < std::max(steps, 5); ++i) {
    auto t0 = Clock::now();
    std::fill(buffer.begin(), buffer.end(), static_cast<float>(i));
    write_ms.push_back(seconds_since(t0) * 1e3);
  }
  if (buffer[buffer.size() / 2] < 0) std::fprintf(stderr, "unreachable\n");  // keeps the fill

  // Correctness guard: the per-example gradients sum to the batch gradient (of the summed loss).
  {
    TensorList pe = per_example();
    TensorList g = grad({sum(cross_entropy(model.forward(x), y, per_example_loss))}, model.params);
    double worst = 0;
    for (size_t i = 0; i < g.size(); ++i)
      worst = std::max(worst, max(abs(sum(pe[i], {0}) - g[i])).item() / std::max(1e-6, max(abs(g[i])).item()));
    if (worst > 1e-3) {
      std::fprintf(stderr, "bench_plateau: per-example gradients do not sum to the gradient (%.3g)\n", worst);
      return 1;
    }
  }
  std::printf(
      "{\"impl\":\"plateau\",\"bench\":\"toolkit\",\"model\":\"%s\",\"threads\":1,\"batch\":%lld,"
      "\"steps\":%d,\"grad_ms\":%.4f,\"hvp_ms\":%.4f,\"per_example_ms\":%.4f,\"norms_ms\":%.4f,"
      "\"write_ms\":%.4f,\"per_example_bytes\":%lld,\"grad_peak_bytes\":%.0f,\"hvp_peak_bytes\":%.0f,"
      "\"per_example_peak_bytes\":%.0f,\"norms_peak_bytes\":%.0f}\n",
      model_name.c_str(), static_cast<long long>(kBatch), steps, grad_ms, hvp_ms, pe_ms, norms_ms, median(write_ms),
      static_cast<long long>(pe_bytes), grad_peak, hvp_peak, pe_peak, norms_peak);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sam: the sharpness-aware family's step against a plain SGD step (issue 5), one thread, the same
// models, initial values and data as the figures above. Four training steps, each driving its own
// copy of the model (same initial values) with its own SGD (lr 0.01, momentum 0.9):
//   sgd:  PlainStep, one forward and one backward;
//   sam:  SAM with ρ = 0.05, two forwards and two backwards;
//   msam: the same with PerturbationOptions.micro_batch = 32 (4 shards of the batch, each its own ε);
//   hero: HERO with ρ = 0.5, λ = 5 from the first step (two forwards, two backwards, one HVP).
// The perturbed steps run with PerturbationOptions::diagnostics off (the norms and cosine of each
// step, about 0.1 of an SGD step on mlp_784, are a logging choice, not part of the method).
// Every round runs each method in turn: `warmup` untimed steps (caches warm again after the other
// methods ran), then `steps` steps timed one by one. Which method goes first rotates from round to
// round, so a slow spell of the machine hits each method alike. A round's figure for a method is
// its mean step time; the figure is the median over rounds.
struct SamMethod {
  const char* name;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::SGD> sgd;
  std::unique_ptr<optim::TrainStep> step;
  std::vector<double> round_ms;               // mean step time per round
  std::vector<std::vector<double>> steps_ms;  // every timed step, per round
  double last_loss = NAN;
};

optim::HEROOptions quiet_hero() {
  optim::HEROOptions o{.rho = 0.5, .lambda = 5.0, .start_step = 0};
  o.perturbation.diagnostics = false;
  return o;
}

int run_sam(const std::string& model_name, int steps, int warmup, int rounds) {
  set_num_threads(1);
  // The bench's own model fixes the initial values and draws the data from the same generator as
  // train and toolkit do; the nn::make_model copies get those values.
  Generator gen(0);
  int64_t expected_params = 0;
  Model reference = make_model(model_name, gen, expected_params);
  Tensor x = normal({kBatch, 1, 28, 28}, 0.0, 1.0, DType::f32, gen);
  Tensor y = randint(0, kClasses, {kBatch}, gen);

  std::vector<SamMethod> methods;
  for (const char* name : {"sgd", "sam", "msam", "hero"}) {
    SamMethod m{name, nn::make_model(model_name, kClasses), nullptr, nullptr, {}, {}, NAN};
    TensorList params = m.model->parameters();
    if (params.size() != reference.params.size()) {
      std::fprintf(stderr, "bench_plateau: nn::make_model(\"%s\") has %zu parameter tensors, expected %zu\n",
                   model_name.c_str(), params.size(), reference.params.size());
      return 1;
    }
    {
      NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        if (params[i].shape() != reference.params[i].shape()) {
          std::fprintf(stderr, "bench_plateau: %s parameter %zu is %s, expected %s\n", model_name.c_str(), i,
                       params[i].shape().str().c_str(), reference.params[i].shape().str().c_str());
          return 1;
        }
        copy_(params[i], reference.params[i]);
      }
    }
    m.sgd = std::make_unique<optim::SGD>(params, optim::SGDOptions{.lr = 0.01, .momentum = 0.9});
    const std::string method = name;
    if (method == "sgd") {
      m.step = std::make_unique<optim::PlainStep>(*m.model, *m.sgd, optim::cross_entropy_loss());
    } else if (method == "sam") {
      m.step = std::make_unique<optim::SAM>(*m.model, *m.sgd, optim::cross_entropy_loss(),
                                            optim::SAMOptions{.rho = 0.05, .perturbation = {.diagnostics = false}});
    } else if (method == "msam") {
      m.step = std::make_unique<optim::SAM>(
          *m.model, *m.sgd, optim::cross_entropy_loss(),
          optim::SAMOptions{.rho = 0.05, .perturbation = {.micro_batch = 32, .diagnostics = false}});
    } else {
      m.step = std::make_unique<optim::HERO>(*m.model, *m.sgd, optim::cross_entropy_loss(), quiet_hero());
    }
    methods.push_back(std::move(m));
  }

  const size_t n = methods.size();
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < n; ++k) {
      SamMethod& m = methods[(static_cast<size_t>(r) + k) % n];
      for (int i = 0; i < warmup; ++i) m.last_loss = m.step->step(x, y).loss;
      std::vector<double> ms;
      for (int i = 0; i < steps; ++i) {
        auto t0 = Clock::now();
        m.last_loss = m.step->step(x, y).loss;
        ms.push_back(seconds_since(t0) * 1e3);
      }
      double total = 0;
      for (double t : ms) total += t;
      m.round_ms.push_back(total / steps);
      m.steps_ms.push_back(std::move(ms));
    }
  }

  std::string fields;
  char buf[160];
  for (const SamMethod& m : methods) {
    if (!std::isfinite(m.last_loss)) {
      std::fprintf(stderr, "bench_plateau: sam %s: %s's last loss is not finite\n", model_name.c_str(), m.name);
      return 1;
    }
    const optim::StepStats& p = m.step->total_passes();
    const double steps_taken = double(rounds) * (warmup + steps);
    std::snprintf(buf, sizeof buf, ",\"%s_ms\":%.4f,\"%s_last_loss\":%.6f,\"%s_passes_per_step\":[%g,%g,%g]", m.name,
                  median(m.round_ms), m.name, m.last_loss, m.name, double(p.forward) / steps_taken,
                  double(p.backward) / steps_taken, double(p.hvp) / steps_taken);
    fields += buf;
    fields += ",\"" + std::string(m.name) + "_round_ms\":" + json_array(m.round_ms);
    fields += ",\"" + std::string(m.name) + "_steps_ms\":[";
    for (size_t r = 0; r < m.steps_ms.size(); ++r) fields += (r ? "," : "") + json_array(m.steps_ms[r]);
    fields += "]";
  }
  std::printf(
      "{\"impl\":\"plateau\",\"bench\":\"sam\",\"model\":\"%s\",\"threads\":1,\"batch\":%lld,\"steps\":%d,"
      "\"warmup\":%d,\"rounds\":%d%s}\n",
      model_name.c_str(), static_cast<long long>(kBatch), steps, warmup, rounds, fields.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("missing subcommand");
  std::string cmd = argv[1];
  try {
    if (cmd == "overhead") {
      auto o = parse_options(argc, argv, {"--calls", "--batches", "--keep"});
      return run_overhead(int_option(o, "--calls", 1000, 1), int_option(o, "--batches", 1000, 1),
                          int_option(o, "--keep", 1, 0) != 0);
    }
    if (cmd == "fma_peak") {
      auto o = parse_options(argc, argv, {"--repeats"});
      return run_fma_peak(int_option(o, "--repeats", 5, 1));
    }
    if (cmd == "gemm") {
      auto o = parse_options(argc, argv, {"--size", "--repeats"});
      return run_gemm(int_option(o, "--size", 1024, 8), int_option(o, "--repeats", 7, 1));
    }
    if (cmd == "toolkit") {
      auto o = parse_options(argc, argv, {"--model", "--steps", "--warmup"});
      std::string model = o.count("--model") ? o["--model"] : "";
      if (model != "mlp_784" && model != "mnist_cnn")
        usage_error(model.empty() ? "--model is required" : "unknown model '" + model + "'");
      return run_toolkit(model, int_option(o, "--steps", 5, 1), int_option(o, "--warmup", 1, 0));
    }
    if (cmd == "sam") {
      auto o = parse_options(argc, argv, {"--model", "--steps", "--warmup", "--rounds"});
      std::string model = o.count("--model") ? o["--model"] : "";
      if (model != "mlp_784" && model != "mnist_cnn")
        usage_error(model.empty() ? "--model is required" : "unknown model '" + model + "'");
      return run_sam(model, int_option(o, "--steps", 3, 1), int_option(o, "--warmup", 1, 0),
                     int_option(o, "--rounds", 21, 1));
    }
    if (cmd == "train") {
      auto o = parse_options(argc, argv, {"--model", "--threads", "--steps", "--warmup"});
      std::string model = o.count("--model") ? o["--model"] : "";
      if (model != "mlp_784" && model != "mnist_cnn")
        usage_error(model.empty() ? "--model is required" : "unknown model '" + model + "'");
      if (!o.count("--threads")) usage_error("--threads is required");
      return run_train(model, int_option(o, "--threads", 1, 1), int_option(o, "--steps", 20, 1),
                       int_option(o, "--warmup", 3, 0));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_plateau %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
  usage_error("unknown subcommand '" + cmd + "'");
}
