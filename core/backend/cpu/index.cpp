// Indexing kernels: index_select/index_add along one dim, gather/scatter_add by element, masked
// fill and one-hot. Writes that can collide (index_add, scatter_add) run in a fixed order per
// output element, so results do not depend on the thread count.
#include "core/backend/cpu/index.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

constexpr int64_t kGrain = 16384;   // elements per parallel chunk
constexpr int64_t kColumns = 2048;  // columns per index_add task

// Row-major coordinates of linear position p in shape s.
void unravel(int64_t p, const Shape& s, int64_t* coord) {
  for (int64_t d = s.size() - 1; d >= 0; --d) {
    coord[d] = p % s[d];
    p /= s[d];
  }
}

void advance(const Shape& s, int64_t* coord) {
  for (int64_t d = s.size() - 1; d >= 0; --d) {
    if (++coord[d] < s[d]) return;
    coord[d] = 0;
  }
}

// Element offset (in `strides`) of the position `coord` of an index tensor, with the coordinate
// along dim replaced by the index value.
int64_t indexed_offset(const int64_t* coord, int64_t rank, int64_t dim, int64_t index, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = 0; d < rank; ++d) off += (d == dim ? index : coord[d]) * strides[d];
  return off;
}

template <typename T>
void accumulate(T& dst, T src) {
  if constexpr (std::is_same_v<T, bool>)
    dst = dst || src;
  else
    dst += src;
}

}  // namespace

BadIndex find_out_of_range(const Tensor& index, int64_t size) {
  Tensor c = dense(index);
  const int64_t* p = c.data<int64_t>();
  for (int64_t i = 0, n = c.numel(); i < n; ++i)
    if (p[i] < 0 || p[i] >= size) return {i, p[i]};
  return {};
}

void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  Tensor c = dense(x), idx = dense(index);
  int64_t A, S, B;
  split(c.shape(), dim, A, S, B);
  int64_t N = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  size_t row_bytes = static_cast<size_t>(B) * element_size(x.dtype());
  const char* src = static_cast<const char*>(c.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  // Each (a, i) copies one contiguous row of B elements.
  parallel_for(A * N, std::max<int64_t>(1, kGrain / std::max<int64_t>(B, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t a = t / N, i = t % N;
      std::memcpy(dst + t * row_bytes, src + (a * S + ip[i]) * row_bytes, row_bytes);
    }
  });
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source) {
  Tensor src = dense(source), idx = dense(index);
  int64_t A, S, B;
  split(out.shape(), dim, A, S, B);
  int64_t N = idx.numel();
  if (A * B == 0 || N == 0) return;
  const int64_t* ip = idx.data<int64_t>();
  int64_t cols = std::min(B, kColumns), col_blocks = (B + cols - 1) / cols;
  PLATEAU_DISPATCH_ALL(out.dtype(), "index_add", {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* s = src.data<scalar_t>();
    // Tasks own disjoint (a, columns) blocks of the output and add the rows in order of i.
    parallel_for(A * col_blocks, std::max<int64_t>(1, kGrain / (N * cols)), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        int64_t a = t / col_blocks, c0 = (t % col_blocks) * cols, n = std::min(cols, B - c0);
        for (int64_t i = 0; i < N; ++i) {
          scalar_t* d = o + (a * S + ip[i]) * B + c0;
          const scalar_t* r = s + (a * N + i) * B + c0;
          for (int64_t j = 0; j < n; ++j) accumulate(d[j], r[j]);
        }
      }
    });
  });
}

// True when index, the indexed tensor and the other operand are all contiguous, the index runs
// along the last dim and the leading dims agree: then row r of one maps to row r of the others, and
// the kernels below need no coordinate arithmetic (max-pool's backward, cross-entropy's gather).
bool rows_along_last_dim(const Tensor& indexed, int64_t dim, const Tensor& idx, const Tensor& other) {
  int64_t rank = idx.dim();
  if (rank == 0 || dim != rank - 1 || indexed.dim() != rank) return false;
  if (!indexed.is_contiguous() || !other.is_contiguous() || other.shape() != idx.shape()) return false;
  for (int64_t d = 0; d + 1 < rank; ++d)
    if (indexed.shape()[d] != idx.shape()[d]) return false;
  return true;
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  Tensor idx = dense(index);
  const Shape& s = idx.shape();
  int64_t rank = s.size(), total = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  if (rows_along_last_dim(x, dim, idx, out)) {
    int64_t n = s[rank - 1], x_len = x.shape()[rank - 1], rows = total / std::max<int64_t>(n, 1);
    PLATEAU_DISPATCH_ALL(x.dtype(), "gather", {
      const scalar_t* xp = x.data<scalar_t>();
      scalar_t* o = out.data<scalar_t>();
      parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t j = 0; j < n; ++j) o[r * n + j] = xp[r * x_len + ip[r * n + j]];
      });
    });
    return;
  }
  PLATEAU_DISPATCH_ALL(x.dtype(), "gather", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    const Shape& xs = x.strides();
    parallel_for(total, kGrain, [&](int64_t p0, int64_t p1) {
      int64_t coord[Shape::max_dims] = {};
      unravel(p0, s, coord);
      for (int64_t p = p0; p < p1; ++p) {
        o[p] = xp[indexed_offset(coord, rank, dim, ip[p], xs)];
        advance(s, coord);
      }
    });
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor idx = dense(index);
  const Shape& s = idx.shape();
  int64_t rank = s.size(), total = idx.numel();
  if (total == 0) return;
  const int64_t* ip = idx.data<int64_t>();
  // Positions that differ in coordinate 0 write to different outputs unless dim is 0, so slices
  // along dim 0 run in parallel; within one, positions are visited in row-major order.
  if (rows_along_last_dim(out, dim, idx, src)) {
    int64_t n = s[rank - 1], out_len = out.shape()[rank - 1], rows = total / std::max<int64_t>(n, 1);
    PLATEAU_DISPATCH_ALL(out.dtype(), "scatter_add", {
      scalar_t* o = out.data<scalar_t>();
      const scalar_t* sp = src.data<scalar_t>();
      parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t j = 0; j < n; ++j) accumulate(o[r * out_len + ip[r * n + j]], sp[r * n + j]);
      });
    });
    return;
  }
  int64_t slices = dim == 0 ? 1 : s[0];
  int64_t per_slice = total / slices;
  PLATEAU_DISPATCH_ALL(out.dtype(), "scatter_add", {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* sp = src.data<scalar_t>();
    const Shape& os = out.strides();
    const Shape& ss = src.strides();
    parallel_for(slices, std::max<int64_t>(1, kGrain / per_slice), [&](int64_t i0, int64_t i1) {
      int64_t coord[Shape::max_dims] = {};
      unravel(i0 * per_slice, s, coord);
      for (int64_t p = i0 * per_slice; p < i1 * per_slice; ++p) {
        int64_t src_off = 0;
        for (int64_t d = 0; d < rank; ++d) src_off += coord[d] * ss[d];
        accumulate(o[indexed_offset(coord, rank, dim, ip[p], os)], sp[src_off]);
        advance(s, coord);
      }
    });
  });
}

void masked_fill(const Tensor& out, const Tensor& mask, double value) {
  Shape mask_strides = broadcast_strides(mask, out.shape());
  PLATEAU_DISPATCH_ALL(out.dtype(), "masked_fill", {
    scalar_t v = static_cast<scalar_t>(value);
    for_each_row<2>(out.shape(), {&out.strides(), &mask_strides},
                    {static_cast<char*>(out.raw_data()), static_cast<char*>(mask.raw_data())},
                    {sizeof(scalar_t), sizeof(bool)},
                    [v](std::array<char*, 2> p, int64_t n, std::array<int64_t, 2> st) {
                      auto* d = reinterpret_cast<scalar_t*>(p[0]);
                      const auto* m = reinterpret_cast<const bool*>(p[1]);
                      for (int64_t i = 0; i < n; ++i)
                        if (m[i * st[1]]) d[i * st[0]] = v;
                    });
  });
}

void one_hot(const Tensor& indices, const Tensor& out) {
  Tensor idx = dense(indices);
  const int64_t* ip = idx.data<int64_t>();
  int64_t classes = out.shape().back();
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0, n = idx.numel(); i < n; ++i) o[i * classes + ip[i]] = 1;
}

}  // namespace plateau::cpu
