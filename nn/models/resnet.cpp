#include "nn/models/resnet.h"

#include <stdexcept>
#include <string>

namespace plateau::nn {

namespace {

std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 3, Conv2dOptions{.stride = {stride, stride}, .padding = {1, 1}}, false);
}

std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 1, Conv2dOptions{.stride = {stride, stride}}, false);
}

void check_blocks(const std::vector<int64_t>& blocks, const char* model) {
  if (blocks.size() != 4)
    throw std::invalid_argument(std::string("plateau: ") + model + " needs 4 stages of blocks, got " +
                                std::to_string(blocks.size()));
  for (int64_t b : blocks)
    if (b <= 0) throw std::invalid_argument(std::string("plateau: ") + model + " needs at least one block per stage");
}

// Global average pooling and the classifier: [N, C, H, W] -> [N, num_classes].
Tensor classify(const Tensor& x, Linear& fc) { return fc(flatten(adaptive_avg_pool2d(x, {1, 1}), 1)); }

}  // namespace

BasicBlock::BasicBlock(int64_t in_planes, int64_t planes, int64_t stride) : Module("BasicBlock") {
  conv1 = register_module("conv1", conv3x3(in_planes, planes, stride));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (stride != 1 || in_planes != planes)
    downsample = register_module("downsample", std::make_shared<Sequential>(conv1x1(in_planes, planes, stride),
                                                                            std::make_shared<BatchNorm2d>(planes)));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = relu((*bn1)((*conv1)(x)));
  out = (*bn2)((*conv2)(out));
  return relu(out + (downsample ? (*downsample)(x) : x));
}

ResNet::ResNet(const std::vector<int64_t>& blocks, int64_t num_classes) : Module("ResNet") {
  check_blocks(blocks, "ResNet");
  conv1 = register_module("conv1", conv3x3(3, 64, 1));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  int64_t in_planes = 64;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t planes = 64 << stage;
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      layer->push_back(std::make_shared<BasicBlock>(in_planes, planes, b == 0 && stage > 0 ? 2 : 1));
      in_planes = planes;
    }
    layers.push_back(register_module("layer" + std::to_string(stage + 1), layer));
  }
  fc = register_module("fc", std::make_shared<Linear>(512, num_classes));
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor out = relu((*bn1)((*conv1)(x)));
  for (auto& layer : layers) out = (*layer)(out);
  return classify(out, *fc);
}

PreActBlock::PreActBlock(int64_t in_planes, int64_t planes, int64_t stride) : Module("PreActBlock") {
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(in_planes));
  conv1 = register_module("conv1", conv3x3(in_planes, planes, stride));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  if (stride != 1 || in_planes != planes) shortcut = register_module("shortcut", conv1x1(in_planes, planes, stride));
}

Tensor PreActBlock::forward(const Tensor& x) {
  Tensor pre = relu((*bn1)(x));
  Tensor skip = shortcut ? (*shortcut)(pre) : x;
  Tensor out = (*conv1)(pre);
  out = (*conv2)(relu((*bn2)(out)));
  return out + skip;
}

PreActResNet::PreActResNet(const std::vector<int64_t>& blocks, int64_t num_classes) : Module("PreActResNet") {
  check_blocks(blocks, "PreActResNet");
  conv1 = register_module("conv1", conv3x3(3, 64, 1));
  int64_t in_planes = 64;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t planes = 64 << stage;
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      layer->push_back(std::make_shared<PreActBlock>(in_planes, planes, b == 0 && stage > 0 ? 2 : 1));
      in_planes = planes;
    }
    layers.push_back(register_module("layer" + std::to_string(stage + 1), layer));
  }
  bn = register_module("bn", std::make_shared<BatchNorm2d>(512));
  fc = register_module("fc", std::make_shared<Linear>(512, num_classes));
}

Tensor PreActResNet::forward(const Tensor& x) {
  Tensor out = (*conv1)(x);
  for (auto& layer : layers) out = (*layer)(out);
  return classify(relu((*bn)(out)), *fc);
}

std::shared_ptr<ResNet> resnet18(int64_t num_classes) {
  return std::make_shared<ResNet>(std::vector<int64_t>{2, 2, 2, 2}, num_classes);
}

std::shared_ptr<PreActResNet> preact_resnet18(int64_t num_classes) {
  return std::make_shared<PreActResNet>(std::vector<int64_t>{2, 2, 2, 2}, num_classes);
}

}  // namespace plateau::nn
