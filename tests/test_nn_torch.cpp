// PyTorch parity of the nn layers: tools/export_torch_modules.py saved small seeded PyTorch modules
// (state dicts by PyTorch's names), inputs, outputs and gradients in tests/golden/nn_*.safetensors
// (f64). The same architectures built here load those state dicts strictly (so every name matches
// PyTorch's, both ways) and must give the same outputs and gradients, within 1e-10 relative to the
// largest entry of each reference tensor.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "plateau.h"

using namespace plateau;

namespace {

constexpr double tol = 1e-10;

struct Fixture {
  io::TensorMap t;
  Tensor operator[](const std::string& name) const {
    auto it = t.find(name);
    REQUIRE_MESSAGE(it != t.end(), "fixture has no tensor " << name);
    return it->second;
  }
  // The entries under `prefix`, with the prefix taken off ("state.0.weight" -> "0.weight").
  io::TensorMap under(const std::string& prefix) const {
    io::TensorMap out;
    for (const auto& [name, value] : t)
      if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = value;
    return out;
  }
};

Fixture load(const std::string& name) {
  return {io::load_safetensors(std::string(PLATEAU_SOURCE_ROOT) + "/tests/golden/nn_" + name + ".safetensors")};
}

void check_close(const Tensor& ours, const Tensor& ref, const std::string& what) {
  INFO(what);
  REQUIRE(ours.defined());
  REQUIRE(ours.shape() == ref.shape());
  std::vector<double> a = ours.to_vector<double>(), b = ref.to_vector<double>();
  double scale = 1.0, worst = 0.0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  CHECK(worst <= tol * scale);
}

// Loads the fixture's state dict into the model (eval mode), runs it on in.x and checks the output,
// the gradient of sum(y²) with respect to the input and to every parameter.
void check_module(nn::Module& model, const Fixture& fx) {
  model.eval();
  model.load_state_dict(fx.under("state."));
  Tensor x = fx["in.x"].clone().requires_grad_();
  Tensor y = model(x);
  check_close(y, fx["out.y"], "out.y");
  sum(y * y).backward();
  check_close(x.grad(), fx["grad.in.x"], "grad.in.x");
  auto params = model.named_parameters();
  CHECK(params.size() == fx.under("grad.param.").size());
  for (const auto& p : params) check_close(p.tensor.grad(), fx["grad.param." + p.name], "grad.param." + p.name);
}

}  // namespace

TEST_CASE("nn: PyTorch parity of an MLP with LayerNorm, activations, Dropout and BatchNorm1d (eval)") {
  nn::DefaultDTypeGuard f64(DType::f64);
  using namespace nn;
  auto model = std::make_shared<Sequential>(
      std::make_shared<Linear>(6, 16), std::make_shared<LayerNorm>(16), std::make_shared<GELU>(),
      std::make_shared<Linear>(16, 12), std::make_shared<Tanh>(), std::make_shared<Linear>(12, 10),
      std::make_shared<LeakyReLU>(0.2), std::make_shared<Dropout>(0.3), std::make_shared<Linear>(10, 8),
      std::make_shared<Softplus>(2.0, 1.0), std::make_shared<Linear>(8, 6), std::make_shared<BatchNorm1d>(6),
      std::make_shared<Sigmoid>(), std::make_shared<Linear>(6, 3), std::make_shared<ReLU>());
  check_module(*model, load("mlp"));
  // The running statistics came from PyTorch's training steps, so eval used them, not the batch's.
  CHECK(model->at<BatchNorm1d>(11)->num_batches_tracked.item<int64_t>() == 3);
}

TEST_CASE("nn: PyTorch parity of a conv net with BatchNorm2d (eval), GroupNorm and pooling") {
  nn::DefaultDTypeGuard f64(DType::f64);
  using namespace nn;
  auto model = std::make_shared<Sequential>(
      std::make_shared<Conv2d>(3, 8, 3, Conv2dOptions{.padding = {1, 1}}), std::make_shared<BatchNorm2d>(8),
      std::make_shared<ReLU>(),
      std::make_shared<Conv2d>(8, 12, 3, Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}, .groups = 4}),
      std::make_shared<GroupNorm>(4, 12), std::make_shared<LeakyReLU>(0.1), std::make_shared<MaxPool2d>(2, 1),
      std::make_shared<Conv2d>(12, 16, 3, Conv2dOptions{.padding = {2, 2}, .dilation = {2, 2}}, false),
      std::make_shared<AvgPool2d>(2), std::make_shared<AdaptiveAvgPool2d>(2), std::make_shared<Flatten>(),
      std::make_shared<Linear>(64, 5));
  Fixture fx = load("convnet");
  check_module(*model, fx);
  CHECK(model->at<BatchNorm2d>(1)->running_var.to_vector<double>() !=
        std::vector<double>(8, 1.0));  // non-trivial statistics were loaded
}

TEST_CASE("nn: PyTorch parity of TransformerEncoderLayer, post-norm with ReLU and pre-norm with GELU") {
  nn::DefaultDTypeGuard f64(DType::f64);
  SUBCASE("post-norm, relu") {
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(
        16, 4, nn::TransformerEncoderLayerOptions{.dim_feedforward = 32, .dropout = 0.1});
    check_module(*layer, load("encoder_post"));
  }
  SUBCASE("pre-norm, gelu") {
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(
        16, 4,
        nn::TransformerEncoderLayerOptions{
            .dim_feedforward = 32, .dropout = 0.1, .activation = nn::TransformerActivation::gelu, .norm_first = true});
    check_module(*layer, load("encoder_pre"));
  }
}

TEST_CASE("nn: PyTorch parity of MultiheadAttention: cross-attention, a boolean mask, self-attention") {
  nn::DefaultDTypeGuard f64(DType::f64);
  auto attn = std::make_shared<nn::MultiheadAttention>(16, 4);
  Fixture fx = load("mha");
  attn->eval();
  attn->load_state_dict(fx.under("state."));
  Tensor q = fx["in.query"].clone().requires_grad_(), k = fx["in.key"].clone().requires_grad_(),
         v = fx["in.value"].clone().requires_grad_();
  Tensor y = attn->forward(q, k, v);
  check_close(y, fx["out.y"], "out.y");
  sum(y * y).backward();
  check_close(q.grad(), fx["grad.in.query"], "grad.in.query");
  check_close(k.grad(), fx["grad.in.key"], "grad.in.key");
  check_close(v.grad(), fx["grad.in.value"], "grad.in.value");
  for (const auto& p : attn->named_parameters())
    check_close(p.tensor.grad(), fx["grad.param." + p.name], "grad.param." + p.name);

  NoGradGuard no_grad;
  Tensor mask = gt(fx["in.mask"], 0.0);
  check_close(attn->forward(fx["in.query"], fx["in.key"], fx["in.value"], mask), fx["out.y_masked"], "out.y_masked");
  // An additive float mask with −inf where the bool mask is true is the same thing.
  Tensor additive = masked_fill(zeros({4, 6}, DType::f64), mask, -std::numeric_limits<double>::infinity());
  check_close(attn->forward(fx["in.query"], fx["in.key"], fx["in.value"], additive), fx["out.y_masked"],
              "out.y_masked (additive mask)");
  check_close((*attn)(fx["in.query"]), fx["out.y_self"], "out.y_self");
}

TEST_CASE("nn: PyTorch parity of training-mode BatchNorm running statistics (momentum 0.3 and cumulative)") {
  nn::DefaultDTypeGuard f64(DType::f64);
  Fixture fx = load("batchnorm_train");
  auto bn2d = std::make_shared<nn::BatchNorm2d>(4, nn::BatchNormOptions{.momentum = std::nullopt});
  auto bn1d = std::make_shared<nn::BatchNorm1d>(5, nn::BatchNormOptions{.momentum = 0.3});
  bn2d->load_state_dict(fx.under("state.bn2d."));
  bn1d->load_state_dict(fx.under("state.bn1d."));
  for (int s = 0; s < 3; ++s) {
    std::string i = std::to_string(s);
    check_close((*bn2d)(fx["in.x" + i]), fx["out.x" + i], "out.x" + i);
    check_close((*bn1d)(fx["in.z" + i]), fx["out.z" + i], "out.z" + i);
  }
  for (auto& [prefix, module] : {std::pair<std::string, nn::Module*>{"bn2d.", bn2d.get()}, {"bn1d.", bn1d.get()}}) {
    io::TensorMap after = fx.under("after." + prefix), ours = module->state_dict();
    REQUIRE(after.size() == ours.size());
    for (auto& [name, value] : after) {
      REQUIRE(ours.count(name));
      if (value.dtype() == DType::i64)
        CHECK(ours[name].item<int64_t>() == value.item<int64_t>());
      else
        check_close(ours[name], value, "after." + prefix + name);
    }
  }
  CHECK(bn2d->num_batches_tracked.item<int64_t>() == 3);
}
