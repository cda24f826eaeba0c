// Reductions on the device: sums over any set of dims, the first extreme and the top-k along one dim.
// Sums are deterministic without atomics: how a sum is split into partials, and the order in which
// they are combined, depend on the shape alone (never on the device), so a shape always gives the
// same bits. Floating sums accumulate in double, integer and bool sums in i64, as on the CPU.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/backend/cpu/loops.h"  // PLATEAU_DISPATCH_* (dtype switches only)
#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"

namespace plateau::cuda {

namespace {

constexpr int kWarp = 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One dim of a view: its size and element stride.
struct Dim {
  int64_t size, stride;
};

// Appends d after the dims in v (outer to inner), dropping a size-1 dim and merging d into the last
// one when the two walk memory as one run; row-major positions over the dims are unchanged.
void push_merged(std::vector<Dim>& v, Dim d) {
  if (d.size == 1) return;
  if (!v.empty() && v.back().stride == d.stride * d.size)
    v.back() = {v.back().size * d.size, d.stride};
  else
    v.push_back(d);
}

Strided to_strided(const std::vector<Dim>& v) {
  Strided g;
  g.rank = static_cast<int>(v.size());
  for (size_t i = 0; i < v.size(); ++i) g.size[i] = v[i].size, g.stride[i] = v[i].stride;
  return g;
}

int64_t count(const Strided& g) {
  int64_t n = 1;
  for (int d = 0; d < g.rank; ++d) n *= g.size[d];
  return n;
}

int64_t min_stride(const Strided& g) {
  int64_t m = INT64_MAX;
  for (int d = 0; d < g.rank; ++d) m = std::min(m, g.stride[d] < 0 ? -g.stride[d] : g.stride[d]);
  return m;
}

// Element offset of position i of g; a single run (the common case after merging) needs no division.
__device__ __forceinline__ int64_t at(const Strided& g, int64_t i) {
  return g.rank == 1 ? i * g.stride[0] : g.offset(i);
}

// ---------------------------------------------------------------------------------------------------
// Sums. An output o sums the R elements x[kept(o) + red(r)], r < R, split into `chunks` runs of
// `chunk` positions; each (o, chunk) task gives one partial, and partials are summed by a second
// pass of the same kernels over the partial buffer.

// Warp per task t = o·chunks + c (dst is [M][chunks]): lane l adds positions c·chunk + l, + 32, ...
// in order, then the 32 lanes are combined by a fixed shuffle tree. For reductions along the
// innermost memory dim: a warp reads consecutive elements.
template <typename T, typename Acc, typename Dst>
__global__ void sum_warps(const T* x, Strided kept, Strided red, int64_t R, int64_t chunks, int64_t chunk,
                          int64_t tasks, Dst* dst) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
  for (int64_t t = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; t < tasks; t += warps) {
    const int64_t o = t / chunks, c = t % chunks;
    const T* base = x + at(kept, o);
    const int64_t r1 = (c + 1) * chunk < R ? (c + 1) * chunk : R;
    Acc acc = 0;
    for (int64_t r = c * chunk + lane; r < r1; r += kWarp) acc += static_cast<Acc>(base[at(red, r)]);
    for (int s = kWarp / 2; s > 0; s >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, s);
    if (lane == 0) dst[t] = static_cast<Dst>(acc);
  }
}

// Thread per task t = c·M + o (dst is [chunks][M]): adds the chunk's positions in order. For
// reductions over outer dims (a bias gradient [N, K] -> [K]): neighbouring threads read neighbouring
// outputs' elements.
template <typename T, typename Acc, typename Dst>
__global__ void sum_threads(const T* x, Strided kept, Strided red, int64_t R, int64_t M, int64_t chunk, int64_t tasks,
                            Dst* dst) {
  PLATEAU_GRID_STRIDE_LOOP(t, tasks) {
    const int64_t c = t / M, o = t % M;
    const T* base = x + at(kept, o);
    Acc acc = 0;
    const int64_t r1 = (c + 1) * chunk < R ? (c + 1) * chunk : R;
    for (int64_t r = c * chunk; r < r1; ++r) acc += static_cast<Acc>(base[at(red, r)]);
    dst[t] = static_cast<Dst>(acc);
  }
}

// out[o] = Σ_r x[kept(o) + red(r)] for o < count(kept) (out contiguous).
template <typename T, typename Acc, typename Out>
void sum_into(const T* x, const Strided& kept, const Strided& red, Out* out, int dev) {
  const int64_t M = count(kept), R = count(red);
  if (M == 0) return;
  cudaStream_t s = stream(dev);
  // A warp per output when the reduced dims are the innermost in memory and long enough to fill a
  // warp; otherwise a thread per output.
  const bool warps = red.rank > 0 && R > 16 && (kept.rank == 0 || min_stride(red) < min_stride(kept));
  // Split long reductions into chunks when there are too few outputs to fill the device: a warp
  // takes at least 1024 elements, a thread at least 64, and about 8192 warps or 131072 threads are
  // made in all. The split depends on (M, R) only.
  int64_t chunks =
      warps ? std::min(ceil_div(R, 1024), ceil_div(8192, M)) : std::min(ceil_div(R, 64), ceil_div(131072, M));
  chunks = std::max<int64_t>(chunks, 1);
  const int64_t chunk = ceil_div(R, chunks);
  if (chunk > 0) chunks = ceil_div(R, chunk);  // no empty chunk
  const int64_t tasks = M * chunks;

  auto launch = [&](auto* dst) {
    using Dst = std::remove_pointer_t<decltype(dst)>;
    if (warps) {
      sum_warps<T, Acc, Dst>
          <<<grid_for(tasks * kWarp), block_threads, 0, s>>>(x, kept, red, R, chunks, chunk, tasks, dst);
      PLATEAU_LAUNCH_CHECK("sum (warp per output)");
    } else {
      sum_threads<T, Acc, Dst><<<grid_for(tasks), block_threads, 0, s>>>(x, kept, red, R, M, chunk, tasks, dst);
      PLATEAU_LAUNCH_CHECK("sum (thread per output)");
    }
  };
  if (chunks == 1) {
    launch(out);
    return;
  }
  // Partials, then their sum: the same kernels over the partial buffer ([M][chunks] or [chunks][M]).
  Workspace partial(static_cast<size_t>(tasks) * sizeof(Acc), dev);
  Acc* p = static_cast<Acc*>(partial.data());
  launch(p);
  std::vector<Dim> kept2, red2;
  if (warps) {
    push_merged(kept2, {M, chunks});
    push_merged(red2, {chunks, 1});
  } else {
    push_merged(red2, {chunks, M});
    push_merged(kept2, {M, 1});
  }
  sum_into<Acc, Acc, Out>(p, to_strided(kept2), to_strided(red2), out, dev);
}

// ---------------------------------------------------------------------------------------------------
// First extreme and top-k along one dim. Candidates are ordered strictly: better values first (NaN
// counts as the extreme, as on the CPU), equal values by lower position; pass i of top-k picks the
// first candidate after the one pass i − 1 picked. Position −1 is "no candidate".

template <typename T>
__device__ bool better(T v, T best, bool largest) {
  if constexpr (std::is_floating_point_v<T>) {
    if (v != v) return best == best;  // NaN beats everything but NaN
    if (best != best) return false;
  }
  return largest ? v > best : v < best;
}

// Whether candidate (v, i) comes before candidate (w, j).
template <typename T>
__device__ bool before(T v, int64_t i, T w, int64_t j, bool largest) {
  if (i < 0) return false;
  if (j < 0) return true;
  if (better(v, w, largest)) return true;
  if (better(w, v, largest)) return false;
  return i < j;
}

// Where the rows are: row o = a·B + b starts at x + at(rows, o), its elements are `step` apart; the
// i-th pick of row o goes to out[(a·k + i)·B + b].
struct Rows {
  Strided rows;
  int64_t step = 0, R = 0, B = 1, M = 0;
};

// Thread per row, for short rows: k scans of the row.
template <typename T>
__global__ void select_threads(const T* x, Rows g, int64_t k, bool largest, int64_t* out) {
  PLATEAU_GRID_STRIDE_LOOP(o, g.M) {
    const T* row = x + at(g.rows, o);
    const int64_t a = o / g.B, b = o % g.B;
    T pv{};
    int64_t pi = -1;  // the previous pick
    for (int64_t i = 0; i < k; ++i) {
      T bv{};
      int64_t bi = -1;
      for (int64_t r = 0; r < g.R; ++r) {
        const T v = row[r * g.step];
        if (pi >= 0 && !before(pv, pi, v, r, largest)) continue;  // picked already
        if (before(v, r, bv, bi, largest)) bv = v, bi = r;
      }
      out[(a * k + i) * g.B + b] = bi;
      pv = bv, pi = bi;
    }
  }
}

// Block per row, for long rows: each pass, threads scan strided parts of the row and a fixed
// shared-memory tree keeps the first candidate.
template <typename T>
__global__ void select_blocks(const T* x, Rows g, int64_t k, bool largest, int64_t* out) {
  __shared__ T sv[block_threads];
  __shared__ int64_t si[block_threads];
  const int tid = threadIdx.x;
  for (int64_t o = blockIdx.x; o < g.M; o += gridDim.x) {
    const T* row = x + at(g.rows, o);
    const int64_t a = o / g.B, b = o % g.B;
    T pv{};
    int64_t pi = -1;
    for (int64_t i = 0; i < k; ++i) {
      T bv{};
      int64_t bi = -1;
      for (int64_t r = tid; r < g.R; r += blockDim.x) {
        const T v = row[r * g.step];
        if (pi >= 0 && !before(pv, pi, v, r, largest)) continue;
        if (before(v, r, bv, bi, largest)) bv = v, bi = r;
      }
      sv[tid] = bv, si[tid] = bi;
      __syncthreads();
      for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s && before(sv[tid + s], si[tid + s], sv[tid], si[tid], largest))
          sv[tid] = sv[tid + s], si[tid] = si[tid + s];
        __syncthreads();
      }
      pv = sv[0], pi = si[0];
      if (tid == 0) out[(a * k + i) * g.B + b] = pi;
      __syncthreads();  // sv[0] is read by all before the next pass overwrites it
    }
  }
}

void select(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out, const char* what) {
  int dev = out.device().index;
  set_device(dev);
  Rows g;
  std::vector<Dim> rows;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) push_merged(rows, {x.size(d), x.strides()[d]});
  g.rows = to_strided(rows);
  g.R = x.dim() == 0 ? 1 : x.size(dim);
  g.step = x.dim() == 0 ? 0 : x.strides()[dim];
  for (int64_t d = dim + 1; d < x.dim(); ++d) g.B *= x.size(d);
  g.M = count(g.rows);
  if (g.M == 0 || g.R == 0 || k == 0) return;
  cudaStream_t s = stream(dev);
  PLATEAU_DISPATCH_ALL(x.dtype(), what, {
    if (g.R >= block_threads) {
      select_blocks<scalar_t>
          <<<grid_for(g.M * block_threads), block_threads, 0, s>>>(ptr<scalar_t>(x), g, k, largest, ptr<int64_t>(out));
    } else {
      select_threads<scalar_t>
          <<<grid_for(g.M), block_threads, 0, s>>>(ptr<scalar_t>(x), g, k, largest, ptr<int64_t>(out));
    }
    PLATEAU_LAUNCH_CHECK(what);
  });
}

}  // namespace

void sum(const Tensor& x, const std::vector<bool>& reduced, const Tensor& out) {
  int dev = out.device().index;
  set_device(dev);
  std::vector<Dim> kept, red;
  for (int64_t d = 0; d < x.dim(); ++d) push_merged(reduced[d] ? red : kept, {x.size(d), x.strides()[d]});
  Strided gk = to_strided(kept), gr = to_strided(red);
  switch (x.dtype()) {
    case DType::f32: sum_into<float, double, float>(ptr<float>(x), gk, gr, ptr<float>(out), dev); break;
    case DType::f64: sum_into<double, double, double>(ptr<double>(x), gk, gr, ptr<double>(out), dev); break;
    case DType::i64: sum_into<int64_t, int64_t, int64_t>(ptr<int64_t>(x), gk, gr, ptr<int64_t>(out), dev); break;
    case DType::b8: sum_into<bool, int64_t, int64_t>(ptr<bool>(x), gk, gr, ptr<int64_t>(out), dev); break;
  }
}

void arg_extreme(const Tensor& x, int64_t dim, bool largest, const Tensor& out) {
  // The first extreme is the first pick of top-k: out[a·B + b] = out[(a·1 + 0)·B + b].
  select(x, 1, dim, largest, out, largest ? "argmax" : "argmin");
}

void topk_indices(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out) {
  select(x, k, dim, largest, out, "topk");
}

}  // namespace plateau::cuda
