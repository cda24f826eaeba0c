// Batch norm in training mode with cuDNN (forward with batch statistics and the running-statistics
// update, and the fused backward). The CPU, and the CUDA path under create_graph, use the composite
// in core/ops/norm.cpp; the parity tests compare the two.
//
// cuDNN 9 marks these entry points deprecated in favour of its graph API, but they are still the
// supported way to run a plain batch norm (PyTorch calls them too); the warning is silenced here only.
#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/backend/kernels.h"
#include "core/ops/factory.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace plateau::cuda {

namespace {

// x [N, C, rest...] seen as NCHW [N, C, prod(rest), 1]: spatial mode then normalizes each channel
// over N and every remaining position, which is batch norm for any rank >= 2.
struct BatchNormDescriptors {
  explicit BatchNormDescriptors(const Tensor& x) {
    int64_t rest = 1;
    for (int64_t d = 2; d < x.dim(); ++d) rest *= x.size(d);
    cudnnDataType_t type = x.dtype() == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    const char* what = "batch_norm";
    PLATEAU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(data.get(), CUDNN_TENSOR_NCHW, type, static_cast<int>(x.size(0)),
                                                   static_cast<int>(x.size(1)), static_cast<int>(rest), 1),
                        what);
    PLATEAU_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(params.get(), data.get(), CUDNN_BATCHNORM_SPATIAL), what);
  }
  TensorDescriptor data, params;
};

// cuDNN wants scale and bias: ones and zeros stand in for an affine-free batch norm.
Tensor or_filled(const Tensor& t, int64_t channels, double value, const Tensor& like) {
  return t.defined() ? kernels::dense(t) : full({channels}, value, like.dtype(), like.device());
}

}  // namespace

void batch_norm_train_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                              const Tensor& running_var, double momentum, double eps, const Tensor& y,
                              const Tensor& save_mean, const Tensor& save_invstd) {
  const int dev = input.device().index;
  set_device(dev);
  Tensor x = kernels::dense(input);
  const int64_t channels = x.size(1);
  Tensor scale = or_filled(weight, channels, 1.0, x), shift = or_filled(bias, channels, 0.0, x);
  BatchNormDescriptors d(x);
  double one64 = 1, zero64 = 0;
  float one32 = 1, zero32 = 0;
  const void* one = x.dtype() == DType::f64 ? static_cast<const void*>(&one64) : &one32;
  const void* zero = x.dtype() == DType::f64 ? static_cast<const void*>(&zero64) : &zero32;
  // Running statistics are updated in place by cuDNN (the unbiased variance, as the composite does).
  void* rm = running_mean.defined() ? running_mean.raw_data() : nullptr;
  void* rv = running_var.defined() ? running_var.raw_data() : nullptr;
  PLATEAU_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
                          cudnn(dev), CUDNN_BATCHNORM_SPATIAL, one, zero, d.data.get(), x.raw_data(), d.data.get(),
                          y.raw_data(), d.params.get(), scale.raw_data(), shift.raw_data(), momentum, rm, rv, eps,
                          save_mean.raw_data(), save_invstd.raw_data()),
                      "batch_norm (cuDNN forward)");
}

void batch_norm_train_backward(const Tensor& input, const Tensor& grad_y, const Tensor& weight, const Tensor& save_mean,
                               const Tensor& save_invstd, double eps, const Tensor& grad_x, const Tensor& grad_weight,
                               const Tensor& grad_bias) {
  const int dev = input.device().index;
  set_device(dev);
  Tensor x = kernels::dense(input), g = kernels::dense(grad_y);
  const int64_t channels = x.size(1);
  Tensor scale = or_filled(weight, channels, 1.0, x);
  BatchNormDescriptors d(x);
  double one64 = 1, zero64 = 0;
  float one32 = 1, zero32 = 0;
  const void* one = x.dtype() == DType::f64 ? static_cast<const void*>(&one64) : &one32;
  const void* zero = x.dtype() == DType::f64 ? static_cast<const void*>(&zero64) : &zero32;
  PLATEAU_CUDNN_CHECK(
      cudnnBatchNormalizationBackward(cudnn(dev), CUDNN_BATCHNORM_SPATIAL, one, zero, one, zero, d.data.get(),
                                      x.raw_data(), d.data.get(), g.raw_data(), d.data.get(), grad_x.raw_data(),
                                      d.params.get(), scale.raw_data(), grad_weight.raw_data(), grad_bias.raw_data(),
                                      eps, save_mean.raw_data(), save_invstd.raw_data()),
      "batch_norm (cuDNN backward)");
}

}  // namespace plateau::cuda
