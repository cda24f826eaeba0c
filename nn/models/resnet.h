#pragma once
// ResNet-18 and PreActResNet-18 in their CIFAR form (32×32 inputs): a 3×3 stem convolution with 64
// channels and no max-pool, four stages of two basic blocks (64, 128, 256, 512 channels; stride 2
// from the second stage on), global average pooling and a linear classifier. Convolutions have no
// bias. Paths follow torchvision: "layer1.0.conv1.weight", "fc.weight".
#include <memory>
#include <vector>

#include "nn/layers/conv.h"
#include "nn/layers/linear.h"
#include "nn/layers/norm.h"
#include "nn/layers/sequential.h"

namespace plateau::nn {

// He et al. 2016a: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the shortcut is a strided
// 1×1 convolution with batch norm ("downsample") where the shape changes, else the identity.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_planes, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;  // null for the identity shortcut
};

class ResNet : public Module {
 public:
  // blocks: the number of basic blocks per stage ({2, 2, 2, 2} for ResNet-18).
  explicit ResNet(const std::vector<int64_t>& blocks = {2, 2, 2, 2}, int64_t num_classes = 10);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::vector<std::shared_ptr<Sequential>> layers;  // "layer1" ... "layer4"
  std::shared_ptr<Linear> fc;
};

// He et al. 2016b (identity mappings): conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut, the
// shortcut a strided 1×1 convolution of relu(bn1(x)) where the shape changes.
class PreActBlock : public Module {
 public:
  PreActBlock(int64_t in_planes, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Conv2d> shortcut;  // null for the identity shortcut
};

// Pre-activation ResNet with the final batch norm and ReLU before pooling ("bn"), as the paper.
class PreActResNet : public Module {
 public:
  explicit PreActResNet(const std::vector<int64_t>& blocks = {2, 2, 2, 2}, int64_t num_classes = 10);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1;
  std::vector<std::shared_ptr<Sequential>> layers;  // "layer1" ... "layer4"
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Linear> fc;
};

// 11,173,962 parameters for 10 classes.
std::shared_ptr<ResNet> resnet18(int64_t num_classes = 10);
// 11,172,170 parameters for 10 classes.
std::shared_ptr<PreActResNet> preact_resnet18(int64_t num_classes = 10);

}  // namespace plateau::nn
