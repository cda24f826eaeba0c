// libtorch reference timing for Plateau's benchmark models.
//
// Measures one SGD training step (zero_grad, forward, cross-entropy, backward,
// update with lr 0.01, no momentum) at batch 128 on 28x28 inputs, 10 classes.
// Prints exactly one line of JSON to stdout; diagnostics go to stderr.
//
// Build: g++ -O2 -std=c++17 experiments/bench/torch_baseline.cpp \
//          -I/usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10 \
//          -o /tmp/torch_baseline
// Usage: torch_baseline --model mlp_784|mnist_cnn --threads N --steps S [--warmup W] [--task train|toolkit]
//
// --task toolkit times, instead of the training step, the derivative toolkit's references: the
// gradient (forward + backward), a Hessian-vector product by plain double backward (grad of grad
// with create_graph), and per-example gradients by a loop over the batch (one forward and backward
// per example, copied into [B, ...] buffers).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr int64_t kBatch = 128;
constexpr int64_t kClasses = 10;

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "torch_baseline: " << msg << "\n"
            << "usage: torch_baseline --model mlp_784|mnist_cnn --threads N"
               " --steps S [--warmup W] [--task train|toolkit]\n";
  std::exit(2);
}

// Parses a whole-string decimal integer >= min_value, or exits with usage error.
int parse_int(const std::string& opt, const std::string& text, int min_value) {
  try {
    size_t used = 0;
    int value = std::stoi(text, &used);
    if (used == text.size() && value >= min_value) return value;
  } catch (const std::exception&) {
  }
  usage_error("bad value '" + text + "' for " + opt + " (need an integer >= " + std::to_string(min_value) + ")");
}

torch::nn::Sequential make_model(const std::string& name, int64_t& expected_params) {
  namespace nn = torch::nn;
  if (name == "mlp_784") {
    expected_params = 669706;
    return nn::Sequential(nn::Flatten(), nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 512), nn::ReLU(),
                          nn::Linear(512, kClasses));
  }
  expected_params = 110986;  // mnist_cnn
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3)), nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(32, 64, 3)),
                        nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(9216, kClasses));
}

const char* torch_version() {
#ifdef TORCH_VERSION
  return TORCH_VERSION;
#else
  return "unknown";
#endif
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int run_toolkit(torch::nn::Sequential& model, const torch::Tensor& x, const torch::Tensor& y,
                const std::string& model_name, int steps, int warmup) {
  std::vector<torch::Tensor> params = model->parameters();
  std::vector<torch::Tensor> v;
  for (const auto& p : params) v.push_back(torch::randn_like(p));
  auto loss_of = [&](const torch::Tensor& xs, const torch::Tensor& ys) {
    return torch::nn::functional::cross_entropy(model->forward(xs), ys);
  };
  auto time = [&](const std::function<void()>& fn) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return median_of(ms);
  };
  const double grad_ms = time([&] { torch::autograd::grad({loss_of(x, y)}, params); });
  const double hvp_ms = time([&] {
    auto g = torch::autograd::grad({loss_of(x, y)}, params, {}, /*retain_graph=*/true, /*create_graph=*/true);
    torch::autograd::grad(g, params, v);
  });
  std::vector<torch::Tensor> per_example;
  for (const auto& p : params) {
    auto shape = p.sizes().vec();
    shape.insert(shape.begin(), kBatch);
    per_example.push_back(torch::empty(shape));
  }
  const double loop_ms = time([&] {
    for (int64_t b = 0; b < kBatch; ++b) {
      auto g = torch::autograd::grad({loss_of(x.narrow(0, b, 1), y.narrow(0, b, 1))}, params);
      for (size_t i = 0; i < g.size(); ++i) per_example[i][b].copy_(g[i]);
    }
  });
  const char* version = torch_version();
  std::printf(
      "{\"impl\":\"libtorch\",\"bench\":\"toolkit\",\"torch_version\":\"%s\",\"model\":\"%s\",\"threads\":%d,"
      "\"batch\":%lld,\"steps\":%d,\"grad_ms\":%.4f,\"hvp_ms\":%.4f,\"per_example_loop_ms\":%.4f}\n",
      version, model_name.c_str(), torch::get_num_threads(), static_cast<long long>(kBatch), steps, grad_ms, hvp_ms,
      loop_ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name;
  std::string task = "train";
  int threads = 0, steps = 20, warmup = 3;
  for (int i = 1; i < argc; i += 2) {
    std::string opt = argv[i];
    if (opt != "--model" && opt != "--threads" && opt != "--steps" && opt != "--warmup" && opt != "--task")
      usage_error("unknown option '" + opt + "'");
    if (i + 1 >= argc) usage_error("missing value for " + opt);
    std::string val = argv[i + 1];
    if (opt == "--model")
      model_name = val;
    else if (opt == "--task")
      task = val;
    else if (opt == "--threads")
      threads = parse_int(opt, val, 1);
    else if (opt == "--steps")
      steps = parse_int(opt, val, 1);
    else
      warmup = parse_int(opt, val, 0);
  }
  if (model_name != "mlp_784" && model_name != "mnist_cnn")
    usage_error(model_name.empty() ? "--model is required" : "unknown model '" + model_name + "'");
  if (threads == 0) usage_error("--threads is required");
  if (task != "train" && task != "toolkit") usage_error("unknown task '" + task + "'");

  const char* blas_env = std::getenv("OPENBLAS_NUM_THREADS");
  if (blas_env == nullptr)
    std::cerr << "warning: OPENBLAS_NUM_THREADS is unset (--threads " << threads << ")\n";
  else if (std::string(blas_env) != std::to_string(threads))
    std::cerr << "warning: OPENBLAS_NUM_THREADS=" << blas_env << " differs from --threads " << threads << "\n";

  try {
    torch::set_num_interop_threads(1);
  } catch (const std::exception& e) {
    std::cerr << "warning: set_num_interop_threads(1) failed: " << e.what() << "\n";
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);

  int64_t expected_params = 0;
  torch::nn::Sequential model = make_model(model_name, expected_params);
  int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  if (n_params != expected_params) {
    std::cerr << "error: " << model_name << " has " << n_params << " parameters, expected " << expected_params << "\n";
    return 1;
  }

  // Fixed-seed data; the input does not require grad.
  torch::Tensor x = torch::randn({kBatch, 1, 28, 28});
  torch::Tensor y = torch::randint(0, kClasses, {kBatch}, torch::kLong);
  if (task == "toolkit") return run_toolkit(model, x, y, model_name, steps, warmup);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01));

  torch::Tensor loss;
  auto train_step = [&] {
    opt.zero_grad();
    loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  };

  for (int i = 0; i < warmup; ++i) train_step();
  std::vector<double> times_ms;
  times_ms.reserve(steps);
  for (int i = 0; i < steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    train_step();  // CPU kernels are synchronous: the step is done on return.
    auto t1 = std::chrono::steady_clock::now();
    times_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  if (!std::isfinite(loss.item<double>())) {
    std::cerr << "error: final loss is not finite\n";
    return 1;
  }

  const double median = median_of(times_ms);
  const double fastest = *std::min_element(times_ms.begin(), times_ms.end());

  const char* version = torch_version();
  std::printf(
      "{\"impl\":\"libtorch\",\"torch_version\":\"%s\",\"model\":\"%s\","
      "\"threads\":%d,\"batch\":%lld,\"steps\":%d,\"median_ms\":%.4f,"
      "\"min_ms\":%.4f,\"times_ms\":[",
      version, model_name.c_str(), threads, static_cast<long long>(kBatch), steps, median, fastest);
  for (size_t i = 0; i < times_ms.size(); ++i) std::printf("%s%.4f", i ? "," : "", times_ms[i]);
  std::printf("]}\n");
  return 0;
}
