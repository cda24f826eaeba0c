// The model zoo: exact parameter counts (10 classes), output shapes, construction time.
#include <doctest/doctest.h>

#include <chrono>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;

TEST_CASE("nn: model parameter counts are exact") {
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"mlp_784", 669'706},
      {"mnist_cnn", 110'986},
      {"lenet5", 61'706},
      {"resnet18", 11'173'962},
      {"preact_resnet18", 11'172'170},
      {"wrn16_8", 10'961'370},
      {"wrn28_10", 36'479'194},
      {"transformer_classifier", 88'074},
  };
  std::vector<std::string> names;
  for (const auto& [name, count] : expected) {
    INFO(name);
    auto start = std::chrono::steady_clock::now();
    auto model = nn::make_model(name);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(model->parameter_count() == count);
    if (name == "wrn28_10") {
      MESSAGE("wrn28_10 built and initialised in " << seconds << " s");
      CHECK(seconds < 10.0);  // ~1 s here; generous for a loaded machine
    }
    names.push_back(name);
  }
  CHECK(nn::model_names() == names);
  // The head follows num_classes: resnet18's fc is 512·100 + 100 instead of 512·10 + 10.
  CHECK(nn::make_model("resnet18", 100)->parameter_count() == 11'173'962 + 90 * 513);
  testing::check_error([] { nn::make_model("resnet19"); }, {"unknown model 'resnet19'", "resnet18", "wrn28_10"});
  testing::check_error([] { nn::make_model("lenet5", 0); }, {"num_classes > 0"});
}

TEST_CASE("nn: models map their inputs to [N, num_classes]") {
  manual_seed(0);
  for (std::string name : {"mlp_784", "mnist_cnn", "lenet5"}) {
    INFO(name);
    CHECK(nn::make_model(name)->forward(normal({2, 1, 28, 28})).shape() == Shape{2, 10});
  }
  // The CIFAR models pool globally, so a 16×16 input keeps this test cheap.
  for (std::string name : {"resnet18", "preact_resnet18", "wrn16_8"}) {
    INFO(name);
    auto model = nn::make_model(name, 7);
    model->eval();
    NoGradGuard no_grad;
    CHECK((*model)(normal({2, 3, 16, 16})).shape() == Shape{2, 7});
  }
  auto transformer = nn::make_model("transformer_classifier");
  Tensor tokens = randint(0, 256, {3, 20});
  CHECK((*transformer)(tokens).shape() == Shape{3, 10});
  testing::check_error([&] { (*transformer)(randint(0, 256, {3, 65})); }, {"max_len = 64", "[3, 65]"});
  testing::check_error([] { nn::WideResNet(20, 4); }, {"depth = 6n + 4", "depth 20"});
}

TEST_CASE("nn: models are built in the default dtype and are deterministic given the seed") {
  {
    nn::DefaultDTypeGuard f64(DType::f64);
    auto model = nn::make_model("lenet5");
    for (const auto& p : model->named_parameters()) CHECK(p.tensor.dtype() == DType::f64);
  }
  CHECK(nn::default_dtype() == DType::f32);
  manual_seed(5);
  Tensor a = nn::make_model("mnist_cnn")->named_parameters()[0].tensor;
  manual_seed(5);
  Tensor b = nn::make_model("mnist_cnn")->named_parameters()[0].tensor;
  CHECK(a.to_vector<float>() == b.to_vector<float>());
}
