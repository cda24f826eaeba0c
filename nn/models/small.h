#pragma once
// Small models for 28×28 single-channel images (MNIST, Fashion-MNIST).
#include <memory>

#include "nn/layers/conv.h"
#include "nn/layers/linear.h"
#include "nn/layers/sequential.h"

namespace plateau::nn {

// Flatten, 784 → 512 → 512 → num_classes with ReLU: 669,706 parameters for 10 classes.
std::shared_ptr<Sequential> mlp_784(int64_t num_classes = 10);

// conv 3×3 1→32, ReLU, conv 3×3 32→64, ReLU, max-pool 2, flatten, linear 9216 → num_classes:
// 110,986 parameters for 10 classes. Input [N, 1, 28, 28].
class MnistCnn : public Module {
 public:
  explicit MnistCnn(int64_t num_classes = 10);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Linear> fc;
};

// LeNet-5 (LeCun et al. 1998) on 28×28 inputs: conv 5×5 1→6 with padding 2 (so 28×28 plays the
// paper's 32×32), ReLU, max-pool 2, conv 5×5 6→16, ReLU, max-pool 2, 400 → 120 → 84 → num_classes
// with ReLU: 61,706 parameters for 10 classes. ReLU and max pooling replace the paper's scaled tanh
// and trainable subsampling (which adds 80 parameters); the count is the usual modern one.
class LeNet5 : public Module {
 public:
  explicit LeNet5(int64_t num_classes = 10);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Linear> fc1, fc2, fc3;
};

}  // namespace plateau::nn
