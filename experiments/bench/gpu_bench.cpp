// Plateau's side of the GPU benchmarks (tools/gpu_check.sh runs it; gpu_torch.py times the same
// cases with PyTorch on the same card and gpu_report.py compares):
//
//   gpu_bench [--json PATH] [--only CASE]... [--reps R]
//
// Cases, all on cuda:0 in f32:
//   matmul_4096_f32          C = A·B, 4096×4096 times 4096×4096, TF32 off (full f32 products)
//   matmul_4096_tf32         the same with set_allow_tf32(true)
//   conv3x3_64_b256          conv2d 64→64, 3×3, padding 1, no bias, x [256, 64, 32, 32]: forward and
//                            the gradients of x and of the weight for a fixed upstream gradient g
//   host_overhead_per_op_us  host time per recorded op: 10⁴ add/mul of [16] tensors requiring grad,
//                            no synchronization inside the loop (kernel launches included)
//   resnet18_step_b256       one SGD step (momentum 0.9) of the CIFAR ResNet-18, batch 256 of 3×32×32:
//                            forward, cross-entropy, gradients, update
// Every timed case runs warm-up calls (cuDNN's algorithm choice and the caching allocator settle
// there), then R repetitions of a few calls between plateau::cuda::synchronize() calls; the figure is
// the median over repetitions of the time per call. Deterministic mode is off for all of them
// (PyTorch's default: cuDNN may pick non-deterministic algorithms, reductions may use atomics);
// TF32 is on only where the case's name says so, and gpu_torch.py sets PyTorch to match.
//
// Prints one line per case on stdout, "name value" (milliseconds; microseconds for
// host_overhead_per_op_us), and writes every repetition to PATH as JSON (rewritten after each case,
// so a crash keeps the cases before it). A case that throws is reported on stderr and in the JSON,
// the others still run, and the exit status is 1. Without a CUDA device it prints
// "no CUDA device: <reason>", writes {"available": false, ...} and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cuda/runtime.h"
#include "plateau.h"

using namespace plateau;
using json = nlohmann::ordered_json;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const Device kGpu = Device::cuda(0);

// `warmup` calls, then `reps` repetitions of `iters` calls each, the device drained before and after
// every repetition: the time per call of each repetition, in milliseconds.
std::vector<double> time_calls(const std::function<void()>& fn, int warmup, int reps, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  cuda::synchronize();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) fn();
    cuda::synchronize();
    ms.push_back(ms_since(t0) / iters);
  }
  return ms;
}

json timing(const std::vector<double>& ms, int warmup, int iters) {
  return json{{"median_ms", median(ms)}, {"warmup", warmup}, {"iters_per_rep", iters}, {"times_ms", ms}};
}

// C = A·B for 4096² f32 on the device, with TF32 tensor cores off or on. Row 7 of C is checked
// against double-precision dot products on the host, so that a broken kernel cannot pass; the
// error also tells whether TF32 was in effect (about 1e-1 with it, 1e-3 without).
json bench_matmul(bool tf32, int reps) {
  const int64_t n = 4096;
  cuda::set_allow_tf32(tf32);
  Generator gen(1);
  Tensor a_host = normal({n, n}, 0.0, 1.0, DType::f32, gen);
  Tensor b_host = normal({n, n}, 0.0, 1.0, DType::f32, gen);
  Tensor a = a_host.to(kGpu), b = b_host.to(kGpu);
  Tensor c = matmul(a, b);
  double err = 0;
  {
    const float* pa = a_host.data<float>();
    const float* pb = b_host.data<float>();
    std::vector<double> ref(n, 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) ref[j] += double(pa[7 * n + k]) * pb[k * n + j];
    Tensor c_host = c.to(Device::cpu());
    const float* pc = c_host.data<float>();
    for (int64_t j = 0; j < n; ++j) err = std::max(err, std::abs(double(pc[7 * n + j]) - ref[j]));
    const double tol = (tf32 ? 2e-2 : 1e-4) * std::sqrt(double(n));
    if (!(err <= tol))
      throw std::runtime_error("row 7 of A·B is off by " + std::to_string(err) + " (tolerance " + std::to_string(tol) +
                               ")");
  }
  const int warmup = 3, iters = 10;
  std::vector<double> ms = time_calls([&] { c = matmul(a, b); }, warmup, reps, iters);
  json out = timing(ms, warmup, iters);
  out["tf32"] = tf32;
  out["row_max_abs_err"] = err;
  out["tflops"] = 2.0 * n * n * double(n) / (median(ms) * 1e-3) / 1e12;
  cuda::set_allow_tf32(false);
  return out;
}

// conv2d 64→64, 3×3, padding 1, no bias, on x [256, 64, 32, 32]: the forward pass and both
// gradients, grad(y, {x, w}, grad_outputs = g) = (∂⟨y, g⟩/∂x, ∂⟨y, g⟩/∂w).
json bench_conv(int reps) {
  cuda::set_allow_tf32(false);
  Generator gen(2);
  Tensor x = normal({256, 64, 32, 32}, 0.0, 1.0, DType::f32, gen).to(kGpu).requires_grad_();
  Tensor w = normal({64, 64, 3, 3}, 0.0, 1.0 / 24.0, DType::f32, gen).to(kGpu).requires_grad_();
  Tensor g = normal({256, 64, 32, 32}, 0.0, 1.0, DType::f32, gen).to(kGpu);
  Conv2dOptions opts;
  opts.padding = {1, 1};
  GradOptions go;
  go.grad_outputs = {g};
  TensorList grads;
  auto step = [&] {
    Tensor y = conv2d(x, w, Tensor(), opts);
    grads = grad({y}, {x, w}, go);
  };
  step();
  if (grads.size() != 2 || grads[0].shape() != x.shape() || grads[1].shape() != w.shape())
    throw std::runtime_error("conv2d gradients have the wrong shapes");
  const int warmup = 3, iters = 10;
  json out = timing(time_calls(step, warmup, reps, iters), warmup, iters);
  out["tf32"] = false;
  return out;
}

// Host time per recorded op: `ops` calls alternating add and mul on two [16] f32 tensors that
// require grad, every result (and its node) kept alive until the clock stops, as activations are
// during a forward pass. The clock stops before the device is drained, so the figure is what the
// host spends per op (checks, allocation, recording, kernel launch), not the kernels' run time.
json bench_host_overhead(int reps) {
  const int ops = 10000;
  Tensor a = full({16}, 1.5, DType::f32, kGpu).requires_grad_();
  Tensor b = full({16}, 0.25, DType::f32, kGpu).requires_grad_();
  std::vector<Tensor> results(ops);
  auto batch = [&] {
    cuda::synchronize();
    auto t0 = Clock::now();
    for (int i = 0; i < ops; i += 2) {
      results[i] = add(a, b);
      results[i + 1] = mul(a, b);
    }
    const double us = ms_since(t0) * 1e3 / ops;
    cuda::synchronize();
    for (auto& r : results) r = Tensor();
    return us;
  };
  for (int i = 0; i < 3; ++i) batch();
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) us.push_back(batch());
  return json{{"per_op_us", median(us)}, {"ops_per_rep", ops}, {"times_us", us}};
}

// One SGD step (lr 0.01, momentum 0.9) of ResNet-18 (CIFAR form) at batch 256: forward in training
// mode, mean cross-entropy, grad() of every parameter, the update.
json bench_resnet(int reps) {
  cuda::set_allow_tf32(false);
  auto model = std::make_shared<nn::ResNet>(std::vector<int64_t>{2, 2, 2, 2}, 10);
  model->to(kGpu);
  TensorList params = model->parameters();
  int64_t n_params = 0;
  for (const Tensor& p : params) n_params += p.numel();
  if (n_params != 11173962)
    throw std::runtime_error("ResNet-18 has " + std::to_string(n_params) + " parameters, expected 11173962");
  optim::SGD sgd(params, optim::SGDOptions{.lr = 0.01, .momentum = 0.9});
  Generator gen(3);
  Tensor x = normal({256, 3, 32, 32}, 0.0, 1.0, DType::f32, gen).to(kGpu);
  Tensor y = randint(0, 10, {256}, gen).to(kGpu);
  Tensor loss;
  auto step = [&] {
    loss = cross_entropy((*model)(x), y);
    TensorList grads = grad({loss}, params);
    sgd.step(grads);
  };
  step();
  const double first_loss = loss.to(Device::cpu()).item();
  cuda::reset_peak_memory_stats();
  const int warmup = 3, iters = 3;
  json out = timing(time_calls(step, warmup, reps, iters), warmup, iters);
  const double last_loss = loss.to(Device::cpu()).item();
  if (!std::isfinite(first_loss) || !std::isfinite(last_loss))
    throw std::runtime_error("the loss is not finite (" + std::to_string(last_loss) + ")");
  out["tf32"] = false;
  out["first_loss"] = first_loss;
  out["last_loss"] = last_loss;
  out["peak_memory_mb"] = double(cuda::memory_stats().peak) / 1e6;
  return out;
}

struct Case {
  const char* name;
  std::function<json(int)> run;
  const char* value_key;  // the figure printed on stdout
};

void write_json(const std::string& path, const json& doc) {
  if (path.empty()) return;
  std::ofstream f(path);
  f << doc.dump(1) << "\n";
  if (!f) std::fprintf(stderr, "gpu_bench: cannot write %s\n", path.c_str());
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "gpu_bench: %s\n"
               "usage: gpu_bench [--json PATH] [--only CASE]... [--reps R]\n"
               "cases: matmul_4096_f32 matmul_4096_tf32 conv3x3_64_b256 host_overhead_per_op_us "
               "resnet18_step_b256\n",
               msg.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Case> cases = {
      {"matmul_4096_f32", [](int reps) { return bench_matmul(false, reps); }, "median_ms"},
      {"matmul_4096_tf32", [](int reps) { return bench_matmul(true, reps); }, "median_ms"},
      {"conv3x3_64_b256", bench_conv, "median_ms"},
      {"host_overhead_per_op_us", bench_host_overhead, "per_op_us"},
      {"resnet18_step_b256", bench_resnet, "median_ms"},
  };
  std::string json_path;
  std::vector<std::string> only;
  int reps = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage("missing value for " + arg);
    const std::string value = argv[++i];
    if (arg == "--json") {
      json_path = value;
    } else if (arg == "--only") {
      if (std::none_of(cases.begin(), cases.end(), [&](const Case& c) { return value == c.name; }))
        usage("unknown case '" + value + "'");
      only.push_back(value);
    } else if (arg == "--reps") {
      reps = std::atoi(value.c_str());
      if (reps < 1) usage("--reps needs an integer >= 1");
    } else {
      usage("unknown option '" + arg + "'");
    }
  }

  json doc = {{"impl", "plateau"}, {"available", cuda::is_available()}};
  if (!cuda::is_available()) {
    std::string reason = cuda::unavailable_reason();
    const std::string prefix = "no CUDA device: ";
    if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
    std::printf("no CUDA device: %s\n", reason.c_str());
    doc["reason"] = reason;
    write_json(json_path, doc);
    return 0;
  }
  cuda::set_deterministic(false);
  std::fprintf(stderr, "gpu_bench: deterministic mode off for all cases (PyTorch's default); TF32 only in *_tf32\n");
  doc["device_count"] = cuda::device_count();
  doc["deterministic"] = false;
  doc["reps"] = reps;
  doc["cases"] = json::object();
  doc["errors"] = json::object();
  int failed = 0;
  for (const Case& c : cases) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    try {
      json result = c.run(reps);
      std::printf("%s %.4f\n", c.name, result[c.value_key].get<double>());
      std::fflush(stdout);
      doc["cases"][c.name] = std::move(result);
    } catch (const std::exception& e) {
      ++failed;
      std::fprintf(stderr, "gpu_bench: %s failed: %s\n", c.name, e.what());
      doc["errors"][c.name] = e.what();
      cuda::set_allow_tf32(false);
    }
    write_json(json_path, doc);
  }
  doc["memory"] = {{"peak_mb", double(cuda::memory_stats().peak) / 1e6},
                   {"reserved_mb", double(cuda::memory_stats().reserved) / 1e6}};
  write_json(json_path, doc);
  return failed ? 1 : 0;
}
