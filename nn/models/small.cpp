#include "nn/models/small.h"

#include "nn/layers/activation.h"

namespace plateau::nn {

std::shared_ptr<Sequential> mlp_784(int64_t num_classes) {
  return std::make_shared<Sequential>(std::make_shared<Flatten>(), std::make_shared<Linear>(784, 512),
                                      std::make_shared<ReLU>(), std::make_shared<Linear>(512, 512),
                                      std::make_shared<ReLU>(), std::make_shared<Linear>(512, num_classes));
}

MnistCnn::MnistCnn(int64_t num_classes) : Module("MnistCnn") {
  conv1 = register_module("conv1", std::make_shared<Conv2d>(1, 32, 3));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(32, 64, 3));
  fc = register_module("fc", std::make_shared<Linear>(9216, num_classes));
}

Tensor MnistCnn::forward(const Tensor& x) {
  Tensor y = relu((*conv2)(relu((*conv1)(x))));  // [N, 64, 24, 24]
  return (*fc)(flatten(max_pool2d(y, {}), 1));   // 2×2 pooling -> [N, 64·12·12 = 9216]
}

LeNet5::LeNet5(int64_t num_classes) : Module("LeNet5") {
  conv1 = register_module("conv1", std::make_shared<Conv2d>(1, 6, 5, Conv2dOptions{.padding = {2, 2}}));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(6, 16, 5));
  fc1 = register_module("fc1", std::make_shared<Linear>(400, 120));
  fc2 = register_module("fc2", std::make_shared<Linear>(120, 84));
  fc3 = register_module("fc3", std::make_shared<Linear>(84, num_classes));
}

Tensor LeNet5::forward(const Tensor& x) {
  Tensor y = max_pool2d(relu((*conv1)(x)), {});  // [N, 6, 14, 14]
  y = max_pool2d(relu((*conv2)(y)), {});         // [N, 16, 5, 5]
  y = relu((*fc1)(flatten(y, 1)));
  return (*fc3)(relu((*fc2)(y)));
}

}  // namespace plateau::nn
