#include "nn/models/models.h"

#include <functional>
#include <stdexcept>
#include <utility>

namespace plateau::nn {

namespace {

using Factory = std::function<std::shared_ptr<Module>(int64_t)>;

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> models = {
      {"mlp_784", [](int64_t k) { return mlp_784(k); }},
      {"mnist_cnn", [](int64_t k) { return std::make_shared<MnistCnn>(k); }},
      {"lenet5", [](int64_t k) { return std::make_shared<LeNet5>(k); }},
      {"resnet18", [](int64_t k) { return resnet18(k); }},
      {"preact_resnet18", [](int64_t k) { return preact_resnet18(k); }},
      {"wrn16_8", [](int64_t k) { return std::make_shared<WideResNet>(16, 8, k); }},
      {"wrn28_10", [](int64_t k) { return std::make_shared<WideResNet>(28, 10, k); }},
      {"transformer_classifier",
       [](int64_t k) {
         TransformerClassifierOptions options;
         options.num_classes = k;
         return std::make_shared<TransformerClassifier>(options);
       }},
  };
  return models;
}

}  // namespace

std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes) {
  if (num_classes <= 0)
    throw std::invalid_argument("plateau: make_model(\"" + name + "\") needs num_classes > 0, got " +
                                std::to_string(num_classes));
  for (const auto& [model, factory] : registry())
    if (model == name) return factory(num_classes);
  std::string known;
  for (const auto& [model, factory] : registry()) known += (known.empty() ? "" : ", ") + model;
  throw std::invalid_argument("plateau: unknown model '" + name + "'; known models: " + known);
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [model, factory] : registry()) names.push_back(model);
  return names;
}

}  // namespace plateau::nn
