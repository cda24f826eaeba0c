// Random draws on the device: element i takes Philox block first + i of the (seed, stream) stream
// and turns it into a value with the transforms of core/random/philox.h, the very functions the CPU
// draws call (core/ops/random.cpp), so both devices draw the same numbers from the same generator.
#include "core/backend/cpu/loops.h"  // PLATEAU_DISPATCH_ALL (a dtype switch only)
#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/random/philox.h"

namespace plateau::cuda {

namespace {

// out[i] = transform(philox(seed, stream, first + i)), converted to out's dtype as the CPU converts
// (static_cast of the double value; randint's i64 directly).
template <typename T>
__global__ void draw_kernel(Draw kind, DrawParams p, bool f32, const double* probs, int64_t n, T* out) {
  PLATEAU_GRID_STRIDE_LOOP(i, n) {
    const PhiloxWords b = philox_block(p.seed, p.stream, p.first + static_cast<uint64_t>(i));
    switch (kind) {
      case Draw::uniform: out[i] = static_cast<T>(philox_uniform(b.w[0], b.w[1], f32, p.a, p.b)); break;
      case Draw::normal: out[i] = static_cast<T>(philox_normal(b, p.a, p.b)); break;
      case Draw::bernoulli: out[i] = static_cast<T>(philox_bernoulli(b.w[0], b.w[1], p.a)); break;
      case Draw::bernoulli_tensor: out[i] = static_cast<T>(philox_bernoulli(b.w[0], b.w[1], probs[i])); break;
      case Draw::randint: out[i] = static_cast<T>(philox_randint(b.w[0], b.w[1], p.low, p.range)); break;
    }
  }
}

}  // namespace

void random_draw(Draw kind, const DrawParams& params, const Tensor& out, const Tensor& probs) {
  const int64_t n = out.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  const double* pp = kind == Draw::bernoulli_tensor ? ptr<double>(probs) : nullptr;
  const bool f32 = out.dtype() == DType::f32;  // uniform f32 draws 24 bits, as on the CPU
  PLATEAU_DISPATCH_ALL(out.dtype(), "random draw", {
    draw_kernel<scalar_t><<<grid_for(n), block_threads, 0, s>>>(kind, params, f32, pp, n, ptr<scalar_t>(out));
    PLATEAU_LAUNCH_CHECK("random draw");
  });
}

}  // namespace plateau::cuda
