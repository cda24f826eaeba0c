// Reduction kernels: sums over any set of dims, arg-max/min and top-k along one dim. Inputs are
// made contiguous first and seen as [A, R, B] (before, reduced, after) blocks.
#include "core/backend/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

// Elements summed into one partial result. It is fixed, so how a sum is split (and so its rounding)
// depends on the shape alone, never on the thread count; partials are combined in order.
constexpr int64_t kBlock = 16384;
// Columns one task accumulates when reducing a non-innermost dim (its accumulators stay in cache).
constexpr int64_t kColumns = 2048;
// At most this many row blocks (partial results per column) when reducing a non-innermost dim.
constexpr int64_t kMaxRowBlocks = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Sum of a contiguous run: 8 independent double lanes let the compiler vectorize without
// reassociating anything; the lanes are combined in a fixed tree.
template <typename T>
double sum_run(const T* p, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(p[i + j]);
  double tail = 0;
  for (; i < n; ++i) tail += static_cast<double>(p[i]);
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) + tail;
}

// out[a, b] = sum_r in[a, r, b] for a contiguous [A, R, B] input, accumulated in double.
template <typename T, typename Out>
void sum_arb(const T* in, int64_t A, int64_t R, int64_t B, Out* out) {
  if (R == 0 || A * B == 0) {
    std::fill(out, out + A * B, Out(0));
    return;
  }
  if (B == 1) {
    // Innermost reduction (last dim, or everything): one run per output, long runs in blocks.
    int64_t blocks = ceil_div(R, kBlock);
    if (blocks == 1) {
      parallel_for(A, std::max<int64_t>(1, kBlock / R), [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a) out[a] = static_cast<Out>(sum_run(in + a * R, R));
      });
      return;
    }
    std::vector<double> partial(static_cast<size_t>(A * blocks));
    parallel_for(A * blocks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        int64_t a = t / blocks, start = (t % blocks) * kBlock;
        partial[t] = sum_run(in + a * R + start, std::min(kBlock, R - start));
      }
    });
    for (int64_t a = 0; a < A; ++a) {
      double s = 0;
      for (int64_t b = 0; b < blocks; ++b) s += partial[a * blocks + b];
      out[a] = static_cast<Out>(s);
    }
    return;
  }
  // A non-innermost dim (e.g. the batch dim of a bias gradient [N, K] -> [K]): rows of B are added
  // column-wise, which vectorizes along b. Tasks cover (a, block of rows, block of columns); each
  // block of rows gives one partial per column, combined in order afterwards.
  int64_t cols = std::min(B, kColumns);
  int64_t col_blocks = ceil_div(B, cols);
  int64_t rows = std::max(std::max<int64_t>(1, kBlock / cols), ceil_div(R, kMaxRowBlocks));
  int64_t row_blocks = ceil_div(R, rows);
  std::vector<double> partial(static_cast<size_t>(A * row_blocks * B), 0.0);  // [A][row_blocks][B]
  parallel_for(A * row_blocks * col_blocks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t cb = t % col_blocks, rb = (t / col_blocks) % row_blocks, a = t / (col_blocks * row_blocks);
      int64_t c0 = cb * cols, n = std::min(cols, B - c0);
      double* acc = partial.data() + (a * row_blocks + rb) * B + c0;
      int64_t r = rb * rows, r1 = std::min(R, (rb + 1) * rows);
      // Four rows per pass over the accumulators: a quarter of their loads and stores.
      for (; r + 4 <= r1; r += 4) {
        const T* p = in + (a * R + r) * B + c0;
        const T *q = p + B, *u = q + B, *w = u + B;
        for (int64_t j = 0; j < n; ++j)
          acc[j] += (static_cast<double>(p[j]) + static_cast<double>(q[j])) +
                    (static_cast<double>(u[j]) + static_cast<double>(w[j]));
      }
      for (; r < r1; ++r) {
        const T* row = in + (a * R + r) * B + c0;
        for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<double>(row[j]);
      }
    }
  });
  parallel_for(A * B, kBlock, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t a = i / B, b = i % B;
      double s = 0;
      for (int64_t rb = 0; rb < row_blocks; ++rb) s += partial[(a * row_blocks + rb) * B + b];
      out[i] = static_cast<Out>(s);
    }
  });
}

// Integer sums: exact in i64, a plain loop (they are rare and small: counts of a mask).
void sum_arb_int(const int64_t* in, int64_t A, int64_t R, int64_t B, int64_t* out) {
  std::fill(out, out + A * B, int64_t(0));
  for (int64_t a = 0; a < A; ++a)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t b = 0; b < B; ++b) out[a * B + b] += in[(a * R + r) * B + b];
}

// A contiguous tensor's dims coalesced into alternating kept and reduced groups (size-1 dims dropped).
struct Group {
  int64_t size;
  bool reduced;
};

std::vector<Group> groups_of(const Shape& shape, const std::vector<bool>& reduced) {
  std::vector<Group> g;
  for (int64_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!g.empty() && g.back().reduced == reduced[d])
      g.back().size *= shape[d];
    else
      g.push_back({shape[d], reduced[d]});
  }
  return g;
}

// Reduces the last reduced group, then recurses on the (double) intermediate for the others.
template <typename T, typename Out>
void sum_groups(const T* in, std::vector<Group> g, Out* out) {
  int64_t last = -1, count = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].reduced) last = static_cast<int64_t>(i), ++count;
  int64_t A = 1, B = 1, total = 1;
  for (const Group& gr : g) total *= gr.size;
  if (last < 0) {
    for (int64_t i = 0; i < total; ++i) out[i] = static_cast<Out>(in[i]);
    return;
  }
  for (int64_t i = 0; i < last; ++i) A *= g[i].size;
  for (size_t i = last + 1; i < g.size(); ++i) B *= g[i].size;
  int64_t R = g[last].size;
  auto reduce_one = [&](auto* dst) {
    if constexpr (std::is_same_v<T, int64_t>)
      sum_arb_int(in, A, R, B, dst);
    else
      sum_arb(in, A, R, B, dst);
  };
  if (count == 1) {
    reduce_one(out);
    return;
  }
  using Mid = std::conditional_t<std::is_same_v<T, int64_t>, int64_t, double>;
  std::vector<Mid> mid(static_cast<size_t>(A * B));
  reduce_one(mid.data());
  g.erase(g.begin() + last);
  // The kept groups on either side of the removed one are now adjacent: merge them.
  if (last > 0 && last < static_cast<int64_t>(g.size())) {
    g[last - 1].size *= g[last].size;
    g.erase(g.begin() + last);
  }
  sum_groups(mid.data(), std::move(g), out);
}

// The dims of x from the largest stride to the smallest, when x is a permutation of a dense
// (contiguous) layout: then x's elements can be read in memory order.
bool memory_order(const Tensor& x, std::vector<int64_t>& order) {
  order.resize(x.dim());
  std::iota(order.begin(), order.end(), int64_t(0));
  const Shape& st = x.strides();
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return st[a] > st[b]; });
  int64_t expected = 1;
  for (int64_t i = x.dim() - 1; i >= 0; --i) {
    int64_t d = order[i];
    if (x.size(d) == 1) continue;
    if (st[d] != expected) return false;
    expected *= x.size(d);
  }
  return true;
}

template <typename T>
bool better(T v, T best, bool largest) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) return !std::isnan(best);
    if (std::isnan(best)) return false;
  }
  return largest ? v > best : v < best;
}

}  // namespace

void sum(const Tensor& x, const std::vector<bool>& reduced, const Tensor& out) {
  if (is_floating(x.dtype())) {
    std::vector<int64_t> order;
    if (!x.is_contiguous() && memory_order(x, order)) {
      // A permutation of dense memory (a transpose, say): reduce it in memory order, into a buffer
      // whose kept dims follow that order, then put them back in place; no copy of the input.
      Shape shape, kept;
      std::vector<bool> mask;
      std::vector<int64_t> back(order.size());
      for (size_t i = 0; i < order.size(); ++i) {
        shape.push_back(x.size(order[i]));
        mask.push_back(reduced[order[i]]);
        kept.push_back(reduced[order[i]] ? 1 : x.size(order[i]));
        back[order[i]] = static_cast<int64_t>(i);
      }
      Tensor buffer = empty(kept, x.dtype(), x.device());
      std::vector<Group> g = groups_of(shape, mask);
      PLATEAU_DISPATCH_FLOATING(x.dtype(), "sum", sum_groups(x.data<scalar_t>(), g, buffer.data<scalar_t>()));
      Shape strides;
      for (size_t d = 0; d < order.size(); ++d) strides.push_back(buffer.strides()[back[d]]);
      auto impl = std::make_shared<TensorImpl>(*buffer.impl());
      impl->shape = out.shape();
      impl->strides = strides;
      copy(Tensor(std::move(impl)), out);
      return;
    }
    std::vector<Group> g = groups_of(x.shape(), reduced);
    Tensor c = dense(x);
    PLATEAU_DISPATCH_FLOATING(x.dtype(), "sum", sum_groups(c.data<scalar_t>(), g, out.data<scalar_t>()));
  } else {
    std::vector<Group> g = groups_of(x.shape(), reduced);
    Tensor c = empty(x.shape(), DType::i64, x.device());
    copy(x, c);
    sum_groups(c.data<int64_t>(), g, out.data<int64_t>());
  }
}

void arg_extreme(const Tensor& x, int64_t dim, bool largest, const Tensor& out) {
  Tensor c = dense(x);
  int64_t A, R, B;
  split(c.shape(), dim, A, R, B);
  int64_t* o = out.data<int64_t>();
  if (R == 0 || A * B == 0) return;
  PLATEAU_DISPATCH_ALL(x.dtype(), "argmax", {
    const scalar_t* p = c.data<scalar_t>();
    if (B == 1) {
      parallel_for(A, std::max<int64_t>(1, kBlock / R), [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a) {
          const scalar_t* row = p + a * R;
          int64_t bi = 0;
          for (int64_t r = 1; r < R; ++r)
            if (better(row[r], row[bi], largest)) bi = r;
          o[a] = bi;
        }
      });
    } else {
      // Column-wise scan over rows, keeping the best value and position of each column.
      int64_t cols = std::min(B, kColumns), col_blocks = ceil_div(B, cols);
      parallel_for(A * col_blocks, std::max<int64_t>(1, kBlock / (R * cols)), [&](int64_t t0, int64_t t1) {
        std::vector<scalar_t> best(cols);
        for (int64_t t = t0; t < t1; ++t) {
          int64_t a = t / col_blocks, c0 = (t % col_blocks) * cols, n = std::min(cols, B - c0);
          int64_t* idx = o + a * B + c0;
          const scalar_t* base = p + a * R * B + c0;
          for (int64_t j = 0; j < n; ++j) best[j] = base[j], idx[j] = 0;
          for (int64_t r = 1; r < R; ++r) {
            const scalar_t* row = base + r * B;
            for (int64_t j = 0; j < n; ++j)
              if (better<scalar_t>(row[j], best[j], largest)) best[j] = row[j], idx[j] = r;
          }
        }
      });
    }
  });
}

void topk_indices(const Tensor& x, int64_t k, int64_t dim, bool largest, const Tensor& out) {
  Tensor c = dense(x);
  int64_t A, R, B;
  split(c.shape(), dim, A, R, B);
  int64_t* o = out.data<int64_t>();
  if (k == 0 || A * B == 0) return;
  PLATEAU_DISPATCH_ALL(x.dtype(), "topk", {
    const scalar_t* p = c.data<scalar_t>();
    parallel_for(A * B, std::max<int64_t>(1, kBlock / R), [&](int64_t t0, int64_t t1) {
      std::vector<int64_t> pos(R);
      for (int64_t t = t0; t < t1; ++t) {
        int64_t a = t / B, b = t % B;
        const scalar_t* v = p + a * R * B + b;
        std::iota(pos.begin(), pos.end(), int64_t(0));
        // A strict order: better values first, equal values by position, so the result is unique.
        auto first = [&](int64_t i, int64_t j) {
          if (better(v[i * B], v[j * B], largest)) return true;
          if (better(v[j * B], v[i * B], largest)) return false;
          return i < j;
        };
        std::partial_sort(pos.begin(), pos.begin() + k, pos.end(), first);
        for (int64_t i = 0; i < k; ++i) o[(a * k + i) * B + b] = pos[i];
      }
    });
  });
}

}  // namespace plateau::cpu
