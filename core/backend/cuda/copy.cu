// CUDA copy and fill, with the semantics of core/backend/cpu/copy.cpp: dst[i] = static_cast(src[i])
// with src broadcast to dst's shape, any strides on both sides (dst may be a view into a bigger
// tensor), any pair of dtypes.
#include <cstring>

#include "core/backend/cuda/elementwise_loops.cuh"
#include "core/backend/cuda/elementwise_math.cuh"
#include "core/backend/cuda/kernels.h"

namespace plateau::cuda {

namespace {

// Device address of t's first element.
char* byte_ptr(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data) + t.offset() * static_cast<int64_t>(element_size(t.dtype()));
}

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  if (dst.numel() == 0) return;
  int dev = dst.device().index;
  set_device(dev);
  if (src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.is_contiguous() && dst.is_contiguous()) {
    // Same bytes in the same order: one memcpy on the device's stream.
    char* d = byte_ptr(dst);
    const char* s = byte_ptr(src);
    if (d != s)
      PLATEAU_CUDA_CHECK(
          cudaMemcpyAsync(d, s, dst.numel() * element_size(dst.dtype()), cudaMemcpyDeviceToDevice, stream(dev)),
          "cuda copy");
    return;
  }
  loops::dispatch_all(dst.dtype(), [&](auto dst_tag) {
    using D = typename decltype(dst_tag)::type;
    loops::dispatch_all(src.dtype(), [&](auto src_tag) {
      using S = typename decltype(src_tag)::type;
      loops::launch<D>("cuda copy kernel", math::Convert<D, S>{}, dst, loops::In<S>{src});
    });
  });
}

// dst[i] = static_cast<T>(value) (for bool: value != 0).
void fill(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  int dev = dst.device().index;
  set_device(dev);
  loops::dispatch_all(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T v = static_cast<T>(value);
    // A contiguous fill with all-zero bytes (0, +0.0, false) is a memset.
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    bool zero_bytes = true;
    for (unsigned char b : bytes) zero_bytes = zero_bytes && b == 0;
    if (zero_bytes && dst.is_contiguous()) {
      PLATEAU_CUDA_CHECK(cudaMemsetAsync(byte_ptr(dst), 0, dst.numel() * sizeof(T), stream(dev)), "cuda fill");
      return;
    }
    loops::launch<T>("cuda fill kernel", math::Constant<T>{v}, dst);
  });
}

}  // namespace plateau::cuda
