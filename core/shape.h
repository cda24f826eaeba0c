#pragma once
// Shape: a small inline vector of dimensions, so creating a tensor allocates nothing for its shape.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace plateau {

class Shape {
 public:
  static constexpr int max_dims = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }  // NOLINT: implicit on purpose
  template <typename It>
  Shape(It first, It last) {
    assign(first, last);
  }

  int64_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int64_t i) { return d_[i]; }
  int64_t operator[](int64_t i) const { return d_[i]; }
  int64_t* begin() { return d_; }
  int64_t* end() { return d_ + n_; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  int64_t back() const { return d_[n_ - 1]; }
  void push_back(int64_t v) {
    if (n_ == max_dims) throw std::invalid_argument("plateau: tensors have at most 8 dimensions");
    d_[n_++] = v;
  }
  void pop_back() { --n_; }
  void insert(int64_t pos, int64_t v) {
    push_back(0);
    for (int64_t i = n_ - 1; i > pos; --i) d_[i] = d_[i - 1];
    d_[pos] = v;
  }
  void erase(int64_t pos) {
    for (int64_t i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
    --n_;
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  bool operator==(const Shape& o) const { return n_ == o.n_ && std::equal(begin(), end(), o.begin()); }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2, 3]"

 private:
  template <typename It>
  void assign(It first, It last) {
    n_ = 0;
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  int64_t d_[max_dims] = {};
  int64_t n_ = 0;
};

// Row-major strides of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);
// numpy broadcasting of two shapes; throws naming both shapes and `what` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what);
// Normalizes a possibly negative dim for a tensor of rank `rank`; throws naming `what` when out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* what);

}  // namespace plateau
