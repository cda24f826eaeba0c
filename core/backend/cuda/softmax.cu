// Softmax and log-softmax along one dim with cuDNN. The dense input is seen as the CPU kernel sees
// it, [outer, n, inner] around dim, given to cuDNN as N = outer, C = n, H = inner, W = 1: mode
// CHANNEL normalizes over C for every (N, H). ACCURATE subtracts each row's max before
// exponentiating, as the CPU does:
//   softmax = exp(x − m) / Σ exp(x − m),   log_softmax (LOG) = x − m − log Σ exp(x − m).
#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "core/backend/cpu/loops.h"  // PLATEAU_DISPATCH_FLOATING (a dtype switch only)
#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/backend/kernels.h"
#include "core/ops/factory.h"

namespace plateau::cuda {

namespace {

template <typename T>
void softmax_rows(const Tensor& x, const Tensor& out, int64_t outer, int64_t n, int64_t inner, bool log, int dev) {
  const char* what = log ? "log_softmax" : "softmax";
  const cudnnDataType_t type = sizeof(T) == 4 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  const T one = 1, zero = 0;  // out = 1·softmax(x) + 0·out
  // cuDNN takes int sizes and strides: the outer rows go in batches of at most INT_MAX elements.
  const int64_t block = n * inner;
  const int64_t rows = std::max<int64_t>(1, INT_MAX / block);
  TensorDescriptor desc;
  for (int64_t o = 0; o < outer; o += rows) {
    const int64_t count = std::min(rows, outer - o);
    PLATEAU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc.get(), CUDNN_TENSOR_NCHW, type, static_cast<int>(count),
                                                   static_cast<int>(n), static_cast<int>(inner), 1),
                        what);
    PLATEAU_CUDNN_CHECK(
        cudnnSoftmaxForward(cudnn(dev), log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL,
                            &one, desc.get(), ptr<T>(x) + o * block, &zero, desc.get(), ptr<T>(out) + o * block),
        what);
  }
}

}  // namespace

void softmax(const Tensor& x, const Tensor& out, int64_t dim, bool log) {
  const Shape& shape = x.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t n = shape.size() == 0 ? 1 : shape[dim];
  if (outer * n * inner == 0) return;
  if (n * inner > INT_MAX)
    throw std::invalid_argument(std::string("plateau: ") + (log ? "log_softmax" : "softmax") +
                                ": cuDNN takes at most 2^31 - 1 elements per row block, got " + std::to_string(n) +
                                " x " + std::to_string(inner) + "; softmax over a smaller dim or on the CPU");
  int dev = out.device().index;
  set_device(dev);
  Tensor xc = kernels::dense(x);
  PLATEAU_DISPATCH_FLOATING(x.dtype(), log ? "log_softmax" : "softmax",
                            softmax_rows<scalar_t>(xc, out, outer, n, inner, log, dev));
}

}  // namespace plateau::cuda
