#pragma once
// Wide residual networks (Zagoruyko & Komodakis 2016) for CIFAR: WRN-depth-k has a 3×3 stem of 16
// channels and three groups of (depth − 4)/6 pre-activation blocks with 16k, 32k and 64k channels
// (stride 2 from the second group on), then batch norm, ReLU, global average pooling and a linear
// classifier. Convolutions have no bias. WRN-16-8: 10,961,370 parameters; WRN-28-10: 36,479,194.
#include <memory>

#include "nn/layers/activation.h"
#include "nn/layers/conv.h"
#include "nn/layers/linear.h"
#include "nn/layers/norm.h"
#include "nn/layers/sequential.h"

namespace plateau::nn {

// conv2(dropout(relu(bn2(conv1(relu(bn1(x))))))) + shortcut, the shortcut a strided 1×1 convolution
// of relu(bn1(x)) where the width or stride changes (as the authors' code), else x.
class WideBasicBlock : public Module {
 public:
  WideBasicBlock(int64_t in_planes, int64_t planes, int64_t stride, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Conv2d> shortcut;  // null for the identity shortcut
};

class WideResNet : public Module {
 public:
  // depth = 6n + 4; dropout between the two convolutions of each block (the paper's 0.3 or none).
  WideResNet(int64_t depth, int64_t widen_factor, int64_t num_classes = 10, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<Sequential> block1, block2, block3;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Linear> fc;
};

}  // namespace plateau::nn
