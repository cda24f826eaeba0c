// Streams, library handles, checked-call errors and strided geometry for the CUDA kernels.
#include "core/backend/cuda/context.h"

#include <mutex>
#include <stdexcept>
#include <vector>

#include "core/backend/cpu/loops.h"  // broadcast_strides
#include "core/backend/cuda/runtime.h"

namespace plateau::cuda {

void fail_call(const char* call, const std::string& error, const char* what) {
  throw std::runtime_error(std::string("plateau: ") + what + ": " + call + " failed: " + error);
}

void set_device(int device) {
  thread_local int current = -1;
  if (current == device) return;
  PLATEAU_CUDA_CHECK(cudaSetDevice(device), "selecting a device");
  current = device;
}

namespace {

// One stream and one handle of each library per device, made on first use.
struct DeviceContext {
  explicit DeviceContext(int) {}
  std::once_flag once;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
};

DeviceContext& context(int device) {
  DeviceContext& c = per_device<DeviceContext>(device);
  std::call_once(c.once, [&] {
    set_device(device);
    PLATEAU_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "creating the device stream");
    PLATEAU_CUBLAS_CHECK(cublasCreate(&c.cublas), "creating the cuBLAS handle");
    PLATEAU_CUBLAS_CHECK(cublasSetStream(c.cublas, c.stream), "creating the cuBLAS handle");
    PLATEAU_CUDNN_CHECK(cudnnCreate(&c.cudnn), "creating the cuDNN handle");
    PLATEAU_CUDNN_CHECK(cudnnSetStream(c.cudnn, c.stream), "creating the cuDNN handle");
  });
  return c;
}

}  // namespace

cudaStream_t stream(int device) { return context(device).stream; }
cublasHandle_t cublas(int device) { return context(device).cublas; }
cudnnHandle_t cudnn(int device) { return context(device).cudnn; }

Strided strided(const Tensor& t, const Shape& out) {
  const Shape& shape = out.empty() && t.dim() > 0 ? t.shape() : out;
  const Shape strides = cpu::broadcast_strides(t, shape);
  Strided s;
  s.rank = static_cast<int>(shape.size());
  for (int64_t d = 0; d < shape.size(); ++d) s.size[d] = shape[d], s.stride[d] = strides[d];
  return s;
}

Workspace::Workspace(size_t bytes, int device) : bytes_(bytes), device_(device) {
  if (bytes) data_ = allocate(bytes, device);
}
Workspace::~Workspace() { release(data_, bytes_, device_); }

}  // namespace plateau::cuda
