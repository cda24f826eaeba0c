// Indexing kernels on the device: range checks, index_select/index_add along one dim, gather and
// scatter_add by element, masked fill and one-hot. Operands are read through their strides (no
// dense copies). The adds that can collide (index_add, scatter_add) on floating tensors run, in
// deterministic mode, in the CPU's order: the (target, position) pairs are stably sorted by target,
// then one thread per target adds its positions in increasing order, so every run gives the CPU's
// bits. Otherwise (and always for i64 and bool, whose sums do not depend on the order) they use atomics.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <bit>
#include <memory>
#include <type_traits>

#include "core/backend/cpu/loops.h"  // PLATEAU_DISPATCH_ALL (a dtype switch only)
#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/backend/cuda/runtime.h"

namespace plateau::cuda {

namespace {

// The geometry of an index-shaped walk over an operand: `shape` (the index tensor's, or the
// output's) with t's own strides, so offset(p) is t's element at row-major position p of shape. t
// has shape's rank and is at least as large along every dim (the ops check it).
Strided walk(const Tensor& t, const Shape& shape) {
  Strided g;
  g.rank = static_cast<int>(shape.size());
  for (int64_t d = 0; d < shape.size(); ++d) g.size[d] = shape[d], g.stride[d] = t.strides()[d];
  return g;
}

// How a position p of `shape` moves along dim: its coordinate there is (p / inner) % extent.
struct Along {
  int64_t inner = 1, extent = 1;
  __device__ int64_t coord(int64_t p) const { return (p / inner) % extent; }
};
Along along(const Shape& shape, int64_t dim) {
  Along a;
  if (shape.size() == 0) return a;
  for (int64_t d = dim + 1; d < shape.size(); ++d) a.inner *= shape[d];
  a.extent = shape[dim];
  return a;
}

int64_t stride_along(const Tensor& t, int64_t dim) { return t.dim() == 0 ? 0 : t.strides()[dim]; }

// dst += v from many threads at once. i64 adds as unsigned (the same two's-complement bits); a bool
// "sum" is a logical or, so only true is ever written.
template <typename T>
__device__ void add_atomic(T* dst, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v) *dst = true;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(dst), static_cast<unsigned long long>(v));
  } else {
    atomicAdd(dst, v);
  }
}

// Stable sort of n (key, position) pairs by key, keys below 2^bits, with CUB's radix sort: after
// sort(), the positions sharing a key are adjacent in keys_out/pos_out, in increasing order (the
// caller fills keys_in/pos_in with positions in increasing order).
class PairSort {
 public:
  PairSort(int64_t n, int bits, int dev) : n_(n), bits_(bits) {
    PLATEAU_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
                           nullptr, temp_bytes_, static_cast<const uint64_t*>(nullptr), static_cast<uint64_t*>(nullptr),
                           static_cast<const int64_t*>(nullptr), static_cast<int64_t*>(nullptr), n_, 0, bits_),
                       "sizing the index sort");
    const size_t array = round_up(static_cast<size_t>(n) * 8);
    ws_ = std::make_unique<Workspace>(4 * array + temp_bytes_, dev);
    char* p = static_cast<char*>(ws_->data());
    keys_in = reinterpret_cast<uint64_t*>(p);
    keys_out = reinterpret_cast<uint64_t*>(p + array);
    pos_in = reinterpret_cast<int64_t*>(p + 2 * array);
    pos_out = reinterpret_cast<int64_t*>(p + 3 * array);
    temp_ = p + 4 * array;
  }
  void sort(cudaStream_t s) {
    size_t bytes = temp_bytes_;
    PLATEAU_CUDA_CHECK(
        cub::DeviceRadixSort::SortPairs(temp_, bytes, keys_in, keys_out, pos_in, pos_out, n_, 0, bits_, s),
        "sorting indices (deterministic scatter)");
  }

  uint64_t *keys_in = nullptr, *keys_out = nullptr;
  int64_t *pos_in = nullptr, *pos_out = nullptr;

 private:
  static size_t round_up(size_t b) { return (b + 255) / 256 * 256; }
  int64_t n_;
  int bits_;
  size_t temp_bytes_ = 0;
  void* temp_ = nullptr;
  std::unique_ptr<Workspace> ws_;
};

// Radix-sort bits that hold every key up to max_key (at least 1).
int bits_for(int64_t max_key) { return std::max(1, static_cast<int>(std::bit_width(static_cast<uint64_t>(max_key)))); }

// Whether the colliding adds of this dtype must run in the CPU's order.
bool ordered(DType dtype) { return deterministic() && is_floating(dtype); }

// ---------------------------------------------------------------------------------------------------
// Range check: the first (lowest) position whose index is outside [0, size), then its value.

__global__ void first_bad_kernel(const int64_t* idx, Strided ig, int64_t n, int64_t size, unsigned long long* first) {
  PLATEAU_GRID_STRIDE_LOOP(p, n) {
    int64_t v = idx[ig.offset(p)];
    if (v < 0 || v >= size) atomicMin(first, static_cast<unsigned long long>(p));
  }
}

// result = {position, value}, position −1 when every index is in range (result[0] holds the
// atomicMin's answer, all ones when nothing was found).
__global__ void bad_value_kernel(const int64_t* idx, Strided ig, int64_t n, int64_t* result) {
  unsigned long long p = static_cast<unsigned long long>(result[0]);
  if (p >= static_cast<unsigned long long>(n)) {
    result[0] = -1, result[1] = 0;
  } else {
    result[1] = idx[ig.offset(static_cast<int64_t>(p))];
  }
}

// ---------------------------------------------------------------------------------------------------
// index_select / index_add along dim, out (or source) position e = (a·N + i)·B + b.

// out[e] = x[e with coordinate i along dim replaced by index[i]] (xg: out's shape, x's strides).
template <typename T>
__global__ void index_select_kernel(const T* x, Strided xg, int64_t x_step, Along al, const int64_t* idx, Strided ig,
                                    int64_t n, T* out) {
  PLATEAU_GRID_STRIDE_LOOP(e, n) {
    int64_t i = al.coord(e);
    out[e] = x[xg.offset(e) + (idx[ig.offset(i)] - i) * x_step];
  }
}

// out[a, index[i], b] += source[a, i, b] for every source position (atomics; out contiguous [A, S, B]).
template <typename T>
__global__ void index_add_atomic(T* out, int64_t S, int64_t N, int64_t B, const int64_t* idx, Strided ig, const T* src,
                                 Strided sg, int64_t n) {
  PLATEAU_GRID_STRIDE_LOOP(e, n) {
    int64_t b = e % B, i = (e / B) % N, a = e / (B * N);
    add_atomic(out + (a * S + idx[ig.offset(i)]) * B + b, src[sg.offset(e)]);
  }
}

// keys[i] = index[i], pos[i] = i: the pairs to sort for an ordered index_add.
__global__ void index_keys_kernel(const int64_t* idx, Strided ig, int64_t n, uint64_t* keys, int64_t* pos) {
  PLATEAU_GRID_STRIDE_LOOP(i, n) {
    keys[i] = static_cast<uint64_t>(idx[ig.offset(i)]);
    pos[i] = i;
  }
}

// Thread per (a, j, b), j < N a place in the sorted order: the thread at the first place of a run of
// equal targets s does out[a, s, b] += source[a, i, b] for the run's positions i, in increasing order
// (the CPU's order); the others have nothing to do.
template <typename T>
__global__ void index_add_ordered(T* out, int64_t S, int64_t N, int64_t B, const uint64_t* keys, const int64_t* pos,
                                  const T* src, Strided sg, int64_t n) {
  PLATEAU_GRID_STRIDE_LOOP(t, n) {
    int64_t b = t % B, j = (t / B) % N, a = t / (B * N);
    uint64_t s = keys[j];
    if (j > 0 && keys[j - 1] == s) continue;
    T* dst = out + (a * S + static_cast<int64_t>(s)) * B + b;
    T v = *dst;
    for (int64_t q = j; q < N && keys[q] == s; ++q) v += src[sg.offset((a * N + pos[q]) * B + b)];
    *dst = v;
  }
}

// ---------------------------------------------------------------------------------------------------
// gather / scatter_add by element: position p of the index tensor, with coordinate c = al.coord(p)
// along dim replaced by v = index[p]. The g geometries walk index's shape with an operand's strides.

// out[p] = x[p with c replaced by v] (out contiguous).
template <typename T>
__global__ void gather_kernel(const T* x, Strided xg, int64_t x_step, Along al, const int64_t* idx, Strided ig,
                              int64_t n, T* out) {
  PLATEAU_GRID_STRIDE_LOOP(p, n) { out[p] = x[xg.offset(p) + (idx[ig.offset(p)] - al.coord(p)) * x_step]; }
}

// out[p with c replaced by v] += src[p] (atomics).
template <typename T>
__global__ void scatter_add_atomic(T* out, Strided og, int64_t out_step, Along al, const int64_t* idx, Strided ig,
                                   const T* src, Strided sg, int64_t n) {
  PLATEAU_GRID_STRIDE_LOOP(p, n) {
    add_atomic(out + og.offset(p) + (idx[ig.offset(p)] - al.coord(p)) * out_step, src[sg.offset(p)]);
  }
}

// keys[p] = the element offset in out that p adds to, pos[p] = p: the pairs to sort for an ordered scatter_add.
__global__ void scatter_keys_kernel(Strided og, int64_t out_step, Along al, const int64_t* idx, Strided ig, int64_t n,
                                    uint64_t* keys, int64_t* pos) {
  PLATEAU_GRID_STRIDE_LOOP(p, n) {
    keys[p] = static_cast<uint64_t>(og.offset(p) + (idx[ig.offset(p)] - al.coord(p)) * out_step);
    pos[p] = p;
  }
}

// Thread per place j of the sorted order: the first place of a run of equal targets adds the run's
// src elements into its target, in increasing position order (the CPU's row-major order).
template <typename T>
__global__ void scatter_add_ordered(T* out, const uint64_t* keys, const int64_t* pos, const T* src, Strided sg,
                                    int64_t n) {
  PLATEAU_GRID_STRIDE_LOOP(j, n) {
    uint64_t key = keys[j];
    if (j > 0 && keys[j - 1] == key) continue;
    T v = out[key];
    for (int64_t q = j; q < n && keys[q] == key; ++q) v += src[sg.offset(pos[q])];
    out[key] = v;
  }
}

// ---------------------------------------------------------------------------------------------------

// out[e] = value where mask (broadcast) is true; out may be any view.
template <typename T>
__global__ void masked_fill_kernel(T* out, Strided og, const bool* mask, Strided mg, T value, int64_t n) {
  PLATEAU_GRID_STRIDE_LOOP(e, n) {
    if (mask[mg.offset(e)]) out[og.offset(e)] = value;
  }
}

// out[i, indices[i]] = 1 (out: zeros [n, classes]).
__global__ void one_hot_kernel(const int64_t* idx, Strided ig, int64_t n, int64_t classes, int64_t* out) {
  PLATEAU_GRID_STRIDE_LOOP(i, n) { out[i * classes + idx[ig.offset(i)]] = 1; }
}

// The largest element offset of a view (strides are not negative): a bound for sort keys.
int64_t max_offset(const Tensor& t) {
  int64_t m = 0;
  for (int64_t d = 0; d < t.dim(); ++d) m += (t.size(d) - 1) * t.strides()[d];
  return m;
}

}  // namespace

kernels::BadIndex find_out_of_range(const Tensor& index, int64_t size) {
  const int64_t n = index.numel();
  if (n == 0) return {};
  int dev = index.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  Strided ig = strided(index);
  Workspace ws(2 * sizeof(int64_t), dev);
  auto* result = static_cast<int64_t*>(ws.data());
  PLATEAU_CUDA_CHECK(cudaMemsetAsync(result, 0xff, sizeof(int64_t), s), "index range check");
  first_bad_kernel<<<grid_for(n), block_threads, 0, s>>>(ptr<int64_t>(index), ig, n, size,
                                                         reinterpret_cast<unsigned long long*>(result));
  PLATEAU_LAUNCH_CHECK("index range check");
  bad_value_kernel<<<1, 1, 0, s>>>(ptr<int64_t>(index), ig, n, result);
  PLATEAU_LAUNCH_CHECK("index range check");
  // The one wait of the indexing ops: the answer decides whether the op throws.
  int64_t host[2] = {-1, 0};
  PLATEAU_CUDA_CHECK(cudaMemcpyAsync(host, result, sizeof host, cudaMemcpyDeviceToHost, s), "index range check");
  PLATEAU_CUDA_CHECK(cudaStreamSynchronize(s), "index range check");
  return {host[0], host[1]};
}

void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  Strided xg = walk(x, out.shape()), ig = strided(index);
  Along al = along(out.shape(), dim);
  int64_t x_step = stride_along(x, dim);
  PLATEAU_DISPATCH_ALL(x.dtype(), "index_select", {
    index_select_kernel<scalar_t><<<grid_for(n), block_threads, 0, s>>>(ptr<scalar_t>(x), xg, x_step, al,
                                                                        ptr<int64_t>(index), ig, n, ptr<scalar_t>(out));
    PLATEAU_LAUNCH_CHECK("index_select");
  });
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source) {
  int64_t A = 1, S = out.dim() == 0 ? 1 : out.size(dim), B = 1, N = index.numel();
  for (int64_t d = 0; d < dim; ++d) A *= out.size(d);
  for (int64_t d = dim + 1; d < out.dim(); ++d) B *= out.size(d);
  const int64_t n = A * N * B;  // source elements
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  Strided ig = strided(index), sg = strided(source);
  if (ordered(out.dtype())) {
    PairSort sort(N, bits_for(S - 1), dev);
    index_keys_kernel<<<grid_for(N), block_threads, 0, s>>>(ptr<int64_t>(index), ig, N, sort.keys_in, sort.pos_in);
    PLATEAU_LAUNCH_CHECK("index_add (sort keys)");
    sort.sort(s);
    PLATEAU_DISPATCH_FLOATING(out.dtype(), "index_add", {
      index_add_ordered<scalar_t><<<grid_for(n), block_threads, 0, s>>>(ptr<scalar_t>(out), S, N, B, sort.keys_out,
                                                                        sort.pos_out, ptr<scalar_t>(source), sg, n);
      PLATEAU_LAUNCH_CHECK("index_add");
    });
    return;
  }
  PLATEAU_DISPATCH_ALL(out.dtype(), "index_add", {
    index_add_atomic<scalar_t><<<grid_for(n), block_threads, 0, s>>>(ptr<scalar_t>(out), S, N, B, ptr<int64_t>(index),
                                                                     ig, ptr<scalar_t>(source), sg, n);
    PLATEAU_LAUNCH_CHECK("index_add");
  });
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const int64_t n = index.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  Strided xg = walk(x, index.shape()), ig = strided(index);
  Along al = along(index.shape(), dim);
  int64_t x_step = stride_along(x, dim);
  PLATEAU_DISPATCH_ALL(x.dtype(), "gather", {
    gather_kernel<scalar_t><<<grid_for(n), block_threads, 0, s>>>(ptr<scalar_t>(x), xg, x_step, al, ptr<int64_t>(index),
                                                                  ig, n, ptr<scalar_t>(out));
    PLATEAU_LAUNCH_CHECK("gather");
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t n = index.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  Strided og = walk(out, index.shape()), sg = walk(src, index.shape()), ig = strided(index);
  Along al = along(index.shape(), dim);
  int64_t out_step = stride_along(out, dim);
  if (ordered(out.dtype())) {
    PairSort sort(n, bits_for(max_offset(out)), dev);
    scatter_keys_kernel<<<grid_for(n), block_threads, 0, s>>>(og, out_step, al, ptr<int64_t>(index), ig, n,
                                                              sort.keys_in, sort.pos_in);
    PLATEAU_LAUNCH_CHECK("scatter_add (sort keys)");
    sort.sort(s);
    PLATEAU_DISPATCH_FLOATING(out.dtype(), "scatter_add", {
      scatter_add_ordered<scalar_t><<<grid_for(n), block_threads, 0, s>>>(ptr<scalar_t>(out), sort.keys_out,
                                                                          sort.pos_out, ptr<scalar_t>(src), sg, n);
      PLATEAU_LAUNCH_CHECK("scatter_add");
    });
    return;
  }
  PLATEAU_DISPATCH_ALL(out.dtype(), "scatter_add", {
    scatter_add_atomic<scalar_t><<<grid_for(n), block_threads, 0, s>>>(
        ptr<scalar_t>(out), og, out_step, al, ptr<int64_t>(index), ig, ptr<scalar_t>(src), sg, n);
    PLATEAU_LAUNCH_CHECK("scatter_add");
  });
}

void masked_fill(const Tensor& out, const Tensor& mask, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  Strided og = strided(out), mg = strided(mask, out.shape());
  PLATEAU_DISPATCH_ALL(out.dtype(), "masked_fill", {
    masked_fill_kernel<scalar_t><<<grid_for(n), block_threads, 0, s>>>(ptr<scalar_t>(out), og, ptr<bool>(mask), mg,
                                                                       static_cast<scalar_t>(value), n);
    PLATEAU_LAUNCH_CHECK("masked_fill");
  });
}

void one_hot(const Tensor& indices, const Tensor& out) {
  const int64_t n = indices.numel();
  if (n == 0) return;
  int dev = out.device().index;
  set_device(dev);
  cudaStream_t s = stream(dev);
  one_hot_kernel<<<grid_for(n), block_threads, 0, s>>>(ptr<int64_t>(indices), strided(indices), n, out.shape().back(),
                                                       ptr<int64_t>(out));
  PLATEAU_LAUNCH_CHECK("one_hot");
}

}  // namespace plateau::cuda
