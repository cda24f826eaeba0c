#include "core/backend/cpu/copy.h"

#include <cstring>

#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"

namespace plateau::cpu {

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape s;
  int64_t lead = out.size() - t.dim();
  for (int64_t d = 0; d < out.size(); ++d) {
    int64_t td = d - lead;
    s.push_back(td < 0 || t.shape()[td] == 1 ? 0 : t.strides()[td]);
  }
  return s;
}

void copy(const Tensor& src, const Tensor& dst) {
  if (src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.is_contiguous() && dst.is_contiguous()) {
    std::memcpy(dst.raw_data(), src.raw_data(), dst.numel() * element_size(dst.dtype()));
    return;
  }
  Shape src_strides = broadcast_strides(src, dst.shape());
  PLATEAU_DISPATCH_ALL(dst.dtype(), "copy", using dst_t = scalar_t; PLATEAU_DISPATCH_ALL(src.dtype(), "copy", {
                         for_each_row<2>(dst.shape(), {&dst.strides(), &src_strides},
                                         {static_cast<char*>(dst.raw_data()), static_cast<char*>(src.raw_data())},
                                         {sizeof(dst_t), sizeof(scalar_t)},
                                         [](std::array<char*, 2> p, int64_t n, std::array<int64_t, 2> s) {
                                           auto* d = reinterpret_cast<dst_t*>(p[0]);
                                           auto* x = reinterpret_cast<const scalar_t*>(p[1]);
                                           if (s[0] == 1 && s[1] == 1)
                                             for (int64_t i = 0; i < n; ++i) d[i] = static_cast<dst_t>(x[i]);
                                           else
                                             for (int64_t i = 0; i < n; ++i)
                                               d[i * s[0]] = static_cast<dst_t>(x[i * s[1]]);
                                         });
                       }));
}

void fill(const Tensor& dst, double value) {
  PLATEAU_DISPATCH_ALL(dst.dtype(), "fill", {
    scalar_t v = static_cast<scalar_t>(value);
    if (dst.is_contiguous()) {
      scalar_t* d = dst.data<scalar_t>();
      for (int64_t i = 0, n = dst.numel(); i < n; ++i) d[i] = v;
    } else {
      for_each_row<1>(dst.shape(), {&dst.strides()}, {static_cast<char*>(dst.raw_data())}, {sizeof(scalar_t)},
                      [v](std::array<char*, 1> p, int64_t n, std::array<int64_t, 1> s) {
                        auto* d = reinterpret_cast<scalar_t*>(p[0]);
                        for (int64_t i = 0; i < n; ++i) d[i * s[0]] = v;
                      });
    }
  });
}

Tensor dense(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor c = empty(x.shape(), x.dtype(), x.device());
  copy(x, c);
  return c;
}

}  // namespace plateau::cpu
