#pragma once
// The model zoo, by name: nn::make_model("resnet18", 10).
//
// | name                   | input            | parameters (10 classes) |
// | mlp_784                | [N, 1, 28, 28]   | 669,706                 |
// | mnist_cnn              | [N, 1, 28, 28]   | 110,986                 |
// | lenet5                 | [N, 1, 28, 28]   | 61,706                  |
// | resnet18               | [N, 3, 32, 32]   | 11,173,962              |
// | preact_resnet18        | [N, 3, 32, 32]   | 11,172,170              |
// | wrn16_8                | [N, 3, 32, 32]   | 10,961,370              |
// | wrn28_10               | [N, 3, 32, 32]   | 36,479,194              |
// | transformer_classifier | i64 [N, L ≤ 64]  | 88,074                  |
#include <memory>
#include <string>
#include <vector>

#include "nn/models/resnet.h"
#include "nn/models/small.h"
#include "nn/models/transformer_classifier.h"
#include "nn/models/wide_resnet.h"

namespace plateau::nn {

// Builds a model in default_dtype(), initialised from the default generator. An unknown name is an
// error that lists the known ones.
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes = 10);
std::vector<std::string> model_names();

}  // namespace plateau::nn
