#pragma once
// What every CUDA kernel file needs (internal to core/backend/cuda; includes CUDA headers, so never
// include it from a public header): checked calls, the device's stream and library handles, device
// pointers of tensors, and strided geometry small enough to pass to a kernel by value.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cuda/runtime.h"

#include "core/tensor.h"

namespace plateau::cuda {

// Throws std::runtime_error "plateau: <what>: <call> failed: <error string>".
[[noreturn]] void fail_call(const char* call, const std::string& error, const char* what);

#define PLATEAU_CUDA_CHECK(call, what)                                                \
  do {                                                                                \
    cudaError_t plateau_status_ = (call);                                             \
    if (plateau_status_ != cudaSuccess)                                               \
      ::plateau::cuda::fail_call(#call, cudaGetErrorString(plateau_status_), (what)); \
  } while (0)
#define PLATEAU_CUBLAS_CHECK(call, what)                                                 \
  do {                                                                                   \
    cublasStatus_t plateau_status_ = (call);                                             \
    if (plateau_status_ != CUBLAS_STATUS_SUCCESS)                                        \
      ::plateau::cuda::fail_call(#call, cublasGetStatusString(plateau_status_), (what)); \
  } while (0)
#define PLATEAU_CUDNN_CHECK(call, what)                                                \
  do {                                                                                 \
    cudnnStatus_t plateau_status_ = (call);                                            \
    if (plateau_status_ != CUDNN_STATUS_SUCCESS)                                       \
      ::plateau::cuda::fail_call(#call, cudnnGetErrorString(plateau_status_), (what)); \
  } while (0)
// After a kernel launch: a bad launch configuration is reported here, with the kernel's name.
#define PLATEAU_LAUNCH_CHECK(what) PLATEAU_CUDA_CHECK(cudaGetLastError(), (what))

// Makes `device` current (cheap when it already is). Every entry point calls it first.
void set_device(int device);
// The device's one stream (all work of the device is ordered on it), and its library handles, bound
// to that stream. Created on first use.
cudaStream_t stream(int device);
cublasHandle_t cublas(int device);
cudnnHandle_t cudnn(int device);

// One T per visible device, constructed from its index on first use and kept for the process
// (destroying driver objects at exit would race with the driver's own teardown).
template <typename T>
T& per_device(int device) {
  static std::vector<T*>* all = [] {
    auto* v = new std::vector<T*>;
    for (int d = 0; d < device_count(); ++d) v->push_back(new T(d));
    return v;
  }();
  if (device < 0 || device >= static_cast<int>(all->size()))
    throw std::invalid_argument("plateau: cuda:" + std::to_string(device) + " is not available (" +
                                std::to_string(all->size()) + " device(s) visible)");
  return *(*all)[device];
}

// Device pointer to t's first element (offset applied). No dtype check: kernels dispatch on dtype.
template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.impl()->storage->data) + t.offset();
}

// Sizes and element strides of a view, broadcast to an output shape (stride 0 on broadcast dims),
// passed to kernels by value. offset(i) maps a row-major linear index of the output to an element
// offset of this operand.
struct Strided {
  int rank = 0;
  int64_t size[Shape::max_dims] = {};
  int64_t stride[Shape::max_dims] = {};

  __host__ __device__ int64_t offset(int64_t linear) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t q = linear / size[d];
      off += (linear - q * size[d]) * stride[d];
      linear = q;
    }
    return off;
  }
};
// t's view broadcast to `out` (t's own shape when out is empty).
Strided strided(const Tensor& t, const Shape& out = {});

// Grid-stride loop over [0, n): every kernel launched with grid_for(n) walks its elements this way.
#define PLATEAU_GRID_STRIDE_LOOP(i, n)                                                   \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

constexpr int block_threads = 256;
inline unsigned int grid_for(int64_t n, int threads = block_threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > 65535LL * 32 ? 65535LL * 32 : blocks));
}

// A cuDNN descriptor owned by one scope: created on construction, destroyed on every path (also
// when a call throws).
template <typename Handle, cudnnStatus_t (*create)(Handle*), cudnnStatus_t (*destroy)(Handle)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { PLATEAU_CUDNN_CHECK(create(&d_), "creating a cuDNN descriptor"); }
  ~CudnnDescriptor() { destroy(d_); }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  Handle get() const { return d_; }

 private:
  Handle d_ = nullptr;
};
using TensorDescriptor =
    CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDescriptor =
    CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

// Scratch device memory for one call (cuDNN workspaces, partial sums), from the caching allocator.
class Workspace {
 public:
  Workspace(size_t bytes, int device);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* data() const { return data_; }
  size_t size() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
};

}  // namespace plateau::cuda
