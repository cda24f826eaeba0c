// Module behaviour through the layers: paths and roles, train/eval, forward hooks, functional_call,
// state_dict round trips and strict loading, batch norm statistics under RunningStatsGuard, Dropout.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <unistd.h>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;

namespace {

std::map<std::string, nn::ParamRole> roles(const nn::Module& m) {
  std::map<std::string, nn::ParamRole> out;
  for (const auto& p : m.named_parameters()) out[p.name] = p.role;
  return out;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

std::shared_ptr<nn::Sequential> small_mlp() {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::LayerNorm>(3),
                                          std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(3, 2));
}

std::shared_ptr<nn::Sequential> small_convnet() {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Conv2d>(1, 4, 3), std::make_shared<nn::BatchNorm2d>(4),
                                          std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.5),
                                          std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(64, 3));
}

}  // namespace

TEST_CASE("nn: named_parameters paths and roles follow PyTorch's names") {
  using nn::ParamRole;
  auto mlp = small_mlp();
  std::vector<std::string> names;
  for (const auto& p : mlp->named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"});
  auto r = roles(*mlp);
  CHECK(r["0.weight"] == ParamRole::weight);
  CHECK(r["0.bias"] == ParamRole::bias);
  CHECK(r["1.weight"] == ParamRole::norm);
  CHECK(r["1.bias"] == ParamRole::norm);

  auto resnet = nn::resnet18();
  r = roles(*resnet);
  CHECK(resnet->named_parameters()[0].name == "conv1.weight");
  CHECK(r.at("layer1.0.conv1.weight") == ParamRole::weight);
  CHECK(r.at("layer1.0.bn1.weight") == ParamRole::norm);
  CHECK(r.at("layer2.0.downsample.0.weight") == ParamRole::weight);
  CHECK(r.at("layer2.0.downsample.1.bias") == ParamRole::norm);
  CHECK(r.at("fc.bias") == ParamRole::bias);
  CHECK(r.count("layer1.0.conv1.bias") == 0);  // convolutions before batch norm have no bias
  CHECK(r.count("layer1.0.downsample.0.weight") == 0);
  int64_t norm = 0;
  for (const auto& [name, role] : r) norm += role == ParamRole::norm;
  CHECK(norm == 2 * (1 + 8 * 2 + 3));  // stem, two per block, three downsample BNs
  std::vector<std::string> buffers;
  for (const auto& [name, b] : resnet->named_buffers()) buffers.push_back(name);
  CHECK(buffers.size() == 3 * 20);
  CHECK(buffers[0] == "bn1.running_mean");
  CHECK(buffers[2] == "bn1.num_batches_tracked");

  auto transformer = nn::make_model("transformer_classifier");
  r = roles(*transformer);
  CHECK(r.at("embedding.weight") == ParamRole::embedding);
  CHECK(r.at("pos_embedding") == ParamRole::embedding);
  CHECK(r.at("layers.1.self_attn.in_proj_weight") == ParamRole::weight);
  CHECK(r.at("layers.1.self_attn.in_proj_bias") == ParamRole::bias);
  CHECK(r.at("layers.1.self_attn.out_proj.weight") == ParamRole::weight);
  CHECK(r.at("layers.0.norm2.weight") == ParamRole::norm);
  CHECK(r.at("layers.0.linear1.bias") == ParamRole::bias);
}

TEST_CASE("nn: train() and eval() reach every submodule") {
  auto model = nn::make_model("preact_resnet18");
  auto all = [&](bool training) {
    for (auto& [path, m] : model->named_modules())
      if (m->is_training() != training) return false;
    return true;
  };
  CHECK(all(true));
  model->eval();
  CHECK(all(false));
  model->train();
  CHECK(all(true));
  CHECK(model->named_modules().size() > 40);
}

TEST_CASE("nn: forward hooks read and replace a layer's output") {
  manual_seed(1);
  auto mlp = small_mlp();
  Tensor x = normal({5, 4});
  Tensor plain = (*mlp)(x);
  Shape seen;
  auto read = (*mlp)[2]->register_forward_hook([&](nn::Module& m, const Tensor&, const Tensor& out) {
    CHECK(m.type_name() == "ReLU");
    seen = out.shape();
    return Tensor();
  });
  CHECK(bit_equal((*mlp)(x), plain));
  CHECK(seen == Shape{5, 3});
  {
    // Zeroing the ReLU's output leaves the last layer's bias on every row.
    auto zero =
        (*mlp)[2]->register_forward_hook([](nn::Module&, const Tensor&, const Tensor& out) { return zeros_like(out); });
    Tensor y = (*mlp)(x);
    Tensor bias = mlp->at<nn::Linear>(3)->bias;
    CHECK(bit_equal(y, expand(bias, {5, 2}).contiguous()));
  }
  CHECK(bit_equal((*mlp)(x), plain));  // the replacing hook went with its handle
}

TEST_CASE("nn: functional_call uses the given parameters and restores the module's own") {
  manual_seed(2);
  auto mlp = small_mlp();
  Tensor x = normal({5, 4});
  Tensor own = mlp->at<nn::Linear>(0)->weight;
  std::vector<float> own_values = own.to_vector<float>();
  Tensor fast = normal({3, 4}).requires_grad_();
  Tensor y = mlp->functional_call({{"0.weight", fast}}, x);
  // By hand: the same layers with the replaced first weight.
  auto ln = mlp->at<nn::LayerNorm>(1);
  auto last = mlp->at<nn::Linear>(3);
  Tensor manual = linear(relu(layer_norm(linear(x, fast, mlp->at<nn::Linear>(0)->bias), {3}, ln->weight, ln->bias)),
                         last->weight, last->bias);
  CHECK(bit_equal(y, manual));
  CHECK(mlp->at<nn::Linear>(0)->weight.is_same(own));
  CHECK(own.to_vector<float>() == own_values);
  sum(y).backward();
  CHECK(fast.grad().defined());
  CHECK_FALSE(own.grad().defined());
  testing::check_error([&] { mlp->functional_call({{"0.kernel", fast}}, x); }, {"no parameter named '0.kernel'"});
  CHECK(mlp->at<nn::Linear>(0)->weight.is_same(own));
}

TEST_CASE("nn: state_dict saved and loaded is bit-exact; strict loading names missing and unexpected keys") {
  manual_seed(3);
  auto model = small_convnet();
  (*model)(normal({8, 1, 6, 6}));  // one training step moves the running statistics
  CHECK(model->at<nn::BatchNorm2d>(1)->num_batches_tracked.item<int64_t>() == 1);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("plateau-nn-" + std::to_string(::getpid()) + ".safetensors")).string();
  model->save(path, {{"note", "test"}});

  manual_seed(99);
  auto fresh = small_convnet();
  CHECK_FALSE(bit_equal(fresh->state_dict().at("0.weight"), model->state_dict().at("0.weight")));
  fresh->load(path);
  std::remove(path.c_str());
  io::TensorMap a = model->state_dict(), b = fresh->state_dict();
  REQUIRE(a.size() == b.size());
  CHECK(a.size() == 2 + 5 + 2);  // conv, batch norm (3 buffers), linear
  for (const auto& [name, t] : a) {
    INFO(name);
    CHECK(bit_equal(t, b.at(name)));
  }
  model->eval();
  fresh->eval();
  Tensor x = normal({2, 1, 6, 6});
  CHECK(bit_equal((*model)(x), (*fresh)(x)));

  io::TensorMap broken = a;
  broken.erase("1.running_mean");
  broken["9.weight"] = zeros({2});
  testing::check_error([&] { fresh->load_state_dict(broken); },
                       {"strict", "missing 1.running_mean", "unexpected 9.weight", "strict = false"});
  fresh->load_state_dict(broken, false);  // loads what matches
  testing::check_error(
      [&] {
        fresh->load_state_dict({{"0.weight", zeros({4, 1, 2, 2})}}, false);
      },
      {"'0.weight' has shape [4, 1, 3, 3]", "[4, 1, 2, 2]"});
}

TEST_CASE("nn: BatchNorm updates running statistics in training mode only when RunningStatsGuard allows") {
  Generator gen(4);
  nn::BatchNorm1d bn(3);
  Tensor x = normal({16, 3}, 1.5, 2.0, DType::f32, gen);
  Tensor batch_mean = mean(x, {0}), batch_var = var(x, {0});  // unbiased, as the running update uses
  {
    nn::RunningStatsGuard frozen(false);
    Tensor y = bn(x);
    CHECK(bn.running_mean.to_vector<float>() == std::vector<float>(3, 0.0f));
    CHECK(bn.running_var.to_vector<float>() == std::vector<float>(3, 1.0f));
    CHECK(bn.num_batches_tracked.item<int64_t>() == 0);
    for (float m : mean(y, {0}).to_vector<float>()) CHECK(std::abs(m) < 1e-5);  // batch statistics still used
  }
  CHECK(nn::running_stats_update_enabled());
  bn(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  std::vector<float> rm = bn.running_mean.to_vector<float>(), rv = bn.running_var.to_vector<float>();
  std::vector<float> bm = batch_mean.to_vector<float>(), bv = batch_var.to_vector<float>();
  for (int c = 0; c < 3; ++c) {
    CHECK(rm[c] == doctest::Approx(0.1 * bm[c]).epsilon(1e-5));
    CHECK(rv[c] == doctest::Approx(0.9 + 0.1 * bv[c]).epsilon(1e-5));
  }
  // Eval mode normalizes with the running statistics: (x − running_mean) / √(running_var + eps).
  bn.eval();
  Tensor y = bn(x);
  Tensor want = (x - bn.running_mean) / sqrt(bn.running_var + 1e-5);
  CHECK(max(abs(y - want)).item() < 1e-5);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);  // no update in eval mode

  // momentum = nullopt: the cumulative average of the batch means.
  nn::BatchNorm1d cumulative(3, {.momentum = std::nullopt});
  Tensor x2 = normal({16, 3}, -1.0, 1.0, DType::f32, gen);
  cumulative(x);
  cumulative(x2);
  Tensor average = (batch_mean + mean(x2, {0})) * 0.5;
  CHECK(max(abs(cumulative.running_mean - average)).item() < 1e-6);
  cumulative.reset_running_stats();
  CHECK(cumulative.running_mean.to_vector<float>() == std::vector<float>(3, 0.0f));
  CHECK(cumulative.num_batches_tracked.item<int64_t>() == 0);
  testing::check_error([&] { bn(normal({4, 5})); }, {"BatchNorm1d(3)", "[4, 5]"});
}

TEST_CASE("nn: Dropout is the identity in eval mode and replays its mask from its generator") {
  Generator gen(5);
  nn::Dropout drop(0.25, &gen);
  Tensor x = ones({4000});
  gen.set_offset(0);
  Tensor y = drop(x);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros_count = 0, scaled = 0;
  for (float e : v) {
    zeros_count += e == 0.0f;
    scaled += e == static_cast<float>(1.0 / 0.75);
  }
  CHECK(zeros_count + scaled == 4000);
  CHECK(zeros_count == doctest::Approx(1000).epsilon(0.1));  // p·n ± 3.6 std
  gen.set_offset(0);
  CHECK(bit_equal(drop(x), y));  // the same generator state gives the same mask
  drop.eval();
  CHECK(drop(x).is_same(x));
  testing::check_error([] { nn::Dropout bad(1.5); }, {"Dropout", "[0, 1]", "1.5"});
}

TEST_CASE("nn: per-example gradients pass through the layers (eval mode) and match a loop over examples") {
  manual_seed(6);
  nn::DefaultDTypeGuard f64(DType::f64);
  auto conv = std::make_shared<nn::Sequential>(std::make_shared<nn::Conv2d>(2, 4, 3, Conv2dOptions{.padding = {1, 1}}),
                                               std::make_shared<nn::GroupNorm>(2, 4), std::make_shared<nn::ReLU>(),
                                               std::make_shared<nn::AvgPool2d>(2), std::make_shared<nn::Flatten>(),
                                               std::make_shared<nn::Linear>(16, 3));
  auto encoder =
      std::make_shared<nn::TransformerEncoderLayer>(8, 2, nn::TransformerEncoderLayerOptions{.dim_feedforward = 16});
  encoder->eval();
  auto check = [](nn::Module& model, const Tensor& x) {
    TensorList params = model.parameters();
    auto losses = [&](const Tensor& in) {
      Tensor y = model(in);
      return sum(reshape(y * y, {in.size(0), -1}), {1});
    };
    TensorList per = per_example_grads(losses(x), params);
    for (int64_t b = 0; b < x.size(0); ++b) {
      TensorList single = grad({sum(losses(slice(x, 0, b, b + 1)))}, params);
      for (size_t i = 0; i < params.size(); ++i)
        CHECK(max(abs(squeeze(slice(per[i], 0, b, b + 1), 0) - single[i])).item() < 1e-12);
    }
  };
  check(*conv, normal({3, 2, 4, 4}, 0, 1, DType::f64));
  check(*encoder, normal({3, 5, 8}, 0, 1, DType::f64));
  // Cross-attention projects with slices of in_proj_weight: the per-example rule sees through them.
  // The input holds the query (positions 0..4) and the key/value memory (positions 5..8).
  struct Cross : nn::Module {
    std::shared_ptr<nn::MultiheadAttention> attn;
    explicit Cross(std::shared_ptr<nn::MultiheadAttention> a) : Module("Cross") {
      attn = register_module("attn", std::move(a));
    }
    Tensor forward(const Tensor& x) override {
      Tensor memory = slice(x, 1, 5, 9);
      return attn->forward(slice(x, 1, 0, 5), memory, memory);
    }
  };
  Cross cross(encoder->self_attn);
  check(cross, normal({3, 9, 8}, 0, 1, DType::f64));
}
