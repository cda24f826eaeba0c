#include "nn/models/wide_resnet.h"

#include <stdexcept>
#include <string>

namespace plateau::nn {

WideBasicBlock::WideBasicBlock(int64_t in_planes, int64_t planes, int64_t stride, double dropout)
    : Module("WideBasicBlock") {
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(in_planes));
  conv1 = register_module(
      "conv1", std::make_shared<Conv2d>(in_planes, planes, 3,
                                        Conv2dOptions{.stride = {stride, stride}, .padding = {1, 1}}, false));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  this->dropout = register_module("dropout", std::make_shared<Dropout>(dropout));
  conv2 =
      register_module("conv2", std::make_shared<Conv2d>(planes, planes, 3, Conv2dOptions{.padding = {1, 1}}, false));
  if (stride != 1 || in_planes != planes)
    shortcut = register_module(
        "shortcut", std::make_shared<Conv2d>(in_planes, planes, 1, Conv2dOptions{.stride = {stride, stride}}, false));
}

Tensor WideBasicBlock::forward(const Tensor& x) {
  Tensor pre = relu((*bn1)(x));
  Tensor skip = shortcut ? (*shortcut)(pre) : x;
  Tensor out = relu((*bn2)((*conv1)(pre)));
  return (*conv2)((*dropout)(out)) + skip;
}

WideResNet::WideResNet(int64_t depth, int64_t widen_factor, int64_t num_classes, double dropout)
    : Module("WideResNet") {
  if (depth < 10 || (depth - 4) % 6 != 0 || widen_factor <= 0)
    throw std::invalid_argument(
        "plateau: WideResNet needs depth = 6n + 4 (10, 16, 22, 28, ...) and widen_factor > 0, got "
        "depth " +
        std::to_string(depth) + " and widen_factor " + std::to_string(widen_factor));
  const int64_t n = (depth - 4) / 6;
  conv1 = register_module("conv1", std::make_shared<Conv2d>(3, 16, 3, Conv2dOptions{.padding = {1, 1}}, false));
  int64_t in_planes = 16;
  auto group = [&](int64_t planes, int64_t stride) {
    auto g = std::make_shared<Sequential>();
    for (int64_t b = 0; b < n; ++b) {
      g->push_back(std::make_shared<WideBasicBlock>(in_planes, planes, b == 0 ? stride : 1, dropout));
      in_planes = planes;
    }
    return g;
  };
  block1 = register_module("block1", group(16 * widen_factor, 1));
  block2 = register_module("block2", group(32 * widen_factor, 2));
  block3 = register_module("block3", group(64 * widen_factor, 2));
  bn = register_module("bn", std::make_shared<BatchNorm2d>(64 * widen_factor));
  fc = register_module("fc", std::make_shared<Linear>(64 * widen_factor, num_classes));
}

Tensor WideResNet::forward(const Tensor& x) {
  Tensor out = (*block3)((*block2)((*block1)((*conv1)(x))));
  out = relu((*bn)(out));
  return (*fc)(flatten(adaptive_avg_pool2d(out, {1, 1}), 1));
}

}  // namespace plateau::nn
