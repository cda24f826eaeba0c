#pragma once
// The launch machinery of the CUDA elementwise kernels (copy, fill, unary, binary, compare, where):
// out[i] = f(in_0[i], ..., in_k[i]) for every element i of out, each operand broadcast to out's
// shape. Internal to core/backend/cuda (includes CUDA headers).
//
// Two kernels, both grid-stride loops:
// - flat: out is contiguous and every operand is either contiguous with out's element count (so it
//   is indexed like out) or a single element (read once per thread into a register). When every
//   pointer is aligned, elements move 4 at a time (16-byte loads for f32).
// - strided: anything else. Dims are coalesced on the host (as the CPU's coalesce_dims), and the
//   kernel splits each linear index into coordinates once for all operands, in 32-bit arithmetic
//   when the output has fewer than 2^31 elements (64-bit divisions cost several times more).
// `out` may be the very same view as an operand: every element is read, then written, by one
// thread, so in-place updates are safe. The loop bodies are __host__ __device__ so that they can be
// run on the host (over host memory) to check the index math where no GPU is at hand.
#include <cstdint>
#include <utility>

#include "core/backend/cuda/context.h"

// Full unrolling of the small fixed loops (vector lanes, operands); nothing in the host pass of the
// __host__ __device__ functions, where g++ would warn about an unknown pragma.
#ifdef __CUDA_ARCH__
#define PLATEAU_UNROLL _Pragma("unroll")
#else
#define PLATEAU_UNROLL
#endif

namespace plateau::cuda::loops {

// An operand of element type T, as the launcher receives it.
template <typename T>
struct In {
  const Tensor& t;
};

// Calls g(Type<T>{}) with T the C++ type of dtype (bool for b8).
template <typename T>
struct Type {
  using type = T;
};
template <typename G>
void dispatch_all(DType dtype, const G& g) {
  switch (dtype) {
    case DType::f32: return g(Type<float>{});
    case DType::f64: return g(Type<double>{});
    case DType::i64: return g(Type<int64_t>{});
    case DType::b8: return g(Type<bool>{});
  }
}

// ---- flat kernel

constexpr int kVec = 4;  // elements per vector access

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <typename T>
bool is_vec_aligned(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % sizeof(Vec<T, kVec>) == 0;
}

// A single value, read once by each thread (what a ScalarIn becomes inside the kernel).
template <typename T>
struct ValueIn {
  T value;
  __host__ __device__ T load(int64_t) const { return value; }
  template <int V>
  __host__ __device__ Vec<T, V> vec(int64_t) const {
    Vec<T, V> r;
    PLATEAU_UNROLL
    for (int k = 0; k < V; ++k) r.v[k] = value;
    return r;
  }
};

// A contiguous operand indexed like out.
template <typename T>
struct FlatIn {
  const T* p;
  bool aligned() const { return is_vec_aligned(p); }
  __host__ __device__ FlatIn bind() const { return *this; }
  __host__ __device__ T load(int64_t i) const { return p[i]; }
  template <int V>
  __host__ __device__ Vec<T, V> vec(int64_t j) const {  // elements [j V, j V + V)
    return reinterpret_cast<const Vec<T, V>*>(p)[j];
  }
};

// A one-element operand broadcast over out.
template <typename T>
struct ScalarIn {
  const T* p;
  bool aligned() const { return true; }
  __host__ __device__ ValueIn<T> bind() const { return {*p}; }
};

template <int V, typename TO, typename F, typename... TI>
__host__ __device__ Vec<TO, V> apply_vec(const F& f, const Vec<TI, V>&... in) {
  Vec<TO, V> r;
  PLATEAU_UNROLL
  for (int k = 0; k < V; ++k) r.v[k] = f(in.v[k]...);
  return r;
}

// Thread `tid` of `step` threads: vectors tid, tid + step, ..., then the elements after the last
// whole vector (or every element when !vec) the same way.
template <typename TO, typename F, typename... Acc>
__host__ __device__ void flat_loop(int64_t tid, int64_t step, int64_t n, TO* out, bool vec, const F& f, Acc... in) {
  int64_t done = 0;
  if (vec) {
    int64_t nv = n / kVec;
    for (int64_t j = tid; j < nv; j += step)
      reinterpret_cast<Vec<TO, kVec>*>(out)[j] = apply_vec<kVec, TO>(f, in.template vec<kVec>(j)...);
    done = nv * kVec;
  }
  for (int64_t i = done + tid; i < n; i += step) out[i] = f(in.load(i)...);  // all of it, or the tail
}

// out[i] = f(in[i]...) for contiguous out; `vec`: every pointer is aligned for Vec<_, kVec>.
template <typename TO, typename F, typename... Acc>
__global__ void flat_kernel(int64_t n, TO* out, bool vec, F f, Acc... in) {
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  flat_loop(tid, step, n, out, vec, f, in.bind()...);
}

// ---- strided kernel

// Coalesced sizes of out and element strides of out (k = 0) and each operand (k >= 1).
template <int N>
struct Indexer {
  int rank = 0;
  int64_t size[Shape::max_dims] = {};
  int64_t stride[Shape::max_dims][N] = {};

  // Element offset in every operand of out's row-major element `linear`.
  template <typename Idx>
  __host__ __device__ void offsets(int64_t linear, int64_t (&off)[N]) const {
    PLATEAU_UNROLL
    for (int k = 0; k < N; ++k) off[k] = 0;
    Idx rest = static_cast<Idx>(linear);
    for (int d = rank - 1; d >= 0; --d) {
      Idx s = static_cast<Idx>(size[d]);
      Idx q = rest / s;
      int64_t coord = static_cast<int64_t>(rest - q * s);
      PLATEAU_UNROLL
      for (int k = 0; k < N; ++k) off[k] += coord * stride[d][k];
      rest = q;
    }
  }
};

// Strides of out and of every operand broadcast to out's shape (context.h's strided), with size-1
// dims dropped and adjacent dims merged where every operand walks them as one
// (stride[d] == stride[d + 1] * size[d + 1]), so contiguous or row-broadcast operands need few
// divisions.
template <int N>
Indexer<N> make_indexer(const Tensor& out, const Tensor* const (&operands)[N]) {
  Strided s[N];
  for (int k = 0; k < N; ++k) s[k] = strided(*operands[k], out.shape());
  Indexer<N> ix;
  int r = 0;
  for (int64_t d = 0; d < out.dim(); ++d) {
    int64_t size = out.shape()[d];
    if (size == 1) continue;
    bool merge = r > 0;
    for (int k = 0; merge && k < N; ++k) merge = ix.stride[r - 1][k] == s[k].stride[d] * size;
    if (merge) {
      ix.size[r - 1] *= size;
      for (int k = 0; k < N; ++k) ix.stride[r - 1][k] = s[k].stride[d];
    } else {
      ix.size[r] = size;
      for (int k = 0; k < N; ++k) ix.stride[r][k] = s[k].stride[d];
      ++r;
    }
  }
  if (r == 0) {  // a single element: one dim of size 1, strides 0
    ix.size[0] = 1;
    r = 1;
  }
  ix.rank = r;
  return ix;
}

template <size_t... K, typename TO, typename F, typename... TI>
__host__ __device__ void store_at(std::index_sequence<K...>, const int64_t* off, TO* out, const F& f, const TI*... in) {
  out[off[0]] = f(in[off[K + 1]]...);
}

// out[offset_0(i)] = f(in[offset_k(i)]...) for element i of out.
template <typename Idx, typename TO, typename F, typename... TI>
__host__ __device__ void strided_at(int64_t i, const Indexer<1 + sizeof...(TI)>& ix, TO* out, const F& f,
                                    const TI*... in) {
  int64_t off[1 + sizeof...(TI)];
  ix.template offsets<Idx>(i, off);
  store_at(std::index_sequence_for<TI...>{}, off, out, f, in...);
}

template <typename Idx, typename TO, typename F, typename... TI>
__global__ void strided_kernel(int64_t n, Indexer<1 + sizeof...(TI)> ix, TO* out, F f, const TI*... in) {
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n; i += step) strided_at<Idx>(i, ix, out, f, in...);
}

// ---- host side

// Calls g(acc...) with each operand wrapped as ScalarIn (one element) or FlatIn (the others).
template <typename G>
void bind_flat(const G& g) {
  g();
}
template <typename G, typename T, typename... Rest>
void bind_flat(const G& g, In<T> first, Rest... rest) {
  const T* p = ptr<T>(first.t);
  if (first.t.numel() == 1)
    bind_flat([&](auto... acc) { g(ScalarIn<T>{p}, acc...); }, rest...);
  else
    bind_flat([&](auto... acc) { g(FlatIn<T>{p}, acc...); }, rest...);
}

template <typename TO, typename F, typename... Acc>
void launch_flat(const char* what, cudaStream_t s, int64_t n, const F& f, TO* out, Acc... acc) {
  bool vec = is_vec_aligned(out) && (acc.aligned() && ...);
  unsigned int grid = grid_for(vec ? (n + kVec - 1) / kVec : n);
  flat_kernel<<<grid, block_threads, 0, s>>>(n, out, vec, f, acc...);
  PLATEAU_LAUNCH_CHECK(what);
}

template <typename TO, typename F, typename... TI>
void launch_strided(const char* what, cudaStream_t s, int64_t n, const F& f, const Tensor& out, In<TI>... in) {
  constexpr int N = 1 + sizeof...(TI);
  const Tensor* operands[N] = {&out, &in.t...};
  Indexer<N> ix = make_indexer<N>(out, operands);
  if (n <= INT32_MAX)
    strided_kernel<uint32_t, TO, F, TI...>
        <<<grid_for(n), block_threads, 0, s>>>(n, ix, ptr<TO>(out), f, ptr<TI>(in.t)...);
  else
    strided_kernel<int64_t, TO, F, TI...>
        <<<grid_for(n), block_threads, 0, s>>>(n, ix, ptr<TO>(out), f, ptr<TI>(in.t)...);
  PLATEAU_LAUNCH_CHECK(what);
}

// Flat when it can index every operand like out (contiguous with out's count, or one element).
inline bool flat_operand(const Tensor& t, int64_t n) { return t.numel() == 1 || (t.numel() == n && t.is_contiguous()); }

// out[i] = f(in[i]...) over out's elements (element type TO), on out's device and stream.
template <typename TO, typename F, typename... TI>
void launch(const char* what, const F& f, const Tensor& out, In<TI>... in) {
  int64_t n = out.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  if (out.is_contiguous() && (flat_operand(in.t, n) && ...))
    bind_flat([&](auto... acc) { launch_flat(what, s, n, f, ptr<TO>(out), acc...); }, in...);
  else
    launch_strided<TO>(what, s, n, f, out, in...);
}

}  // namespace plateau::cuda::loops
