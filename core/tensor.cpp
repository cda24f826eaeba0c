#include "core/tensor.h"

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "core/autograd/autograd.h"
#include "core/backend/cuda/runtime.h"
#include "core/ops/ops.h"

namespace plateau {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i64: return "i64";
    case DType::b8: return "bool";
  }
  return "?";
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

std::string Shape::str() const {
  std::string s = "[";
  for (int64_t i = 0; i < n_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
  return s + "]";
}

Shape contiguous_strides(const Shape& shape) {
  Shape s = shape;
  int64_t stride = 1;
  for (int64_t i = shape.size() - 1; i >= 0; --i) {
    s[i] = stride;
    stride *= shape[i];
  }
  return s;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what) {
  int64_t n = std::max(a.size(), b.size());
  Shape out;
  for (int64_t i = 0; i < n; ++i) {
    int64_t da = i - (n - a.size()) >= 0 ? a[i - (n - a.size())] : 1;
    int64_t db = i - (n - b.size()) >= 0 ? b[i - (n - b.size())] : 1;
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument(std::string("plateau: ") + what + ": shapes " + a.str() + " and " + b.str() +
                                  " do not broadcast (dim " + std::to_string(i) + ": " + std::to_string(da) + " vs " +
                                  std::to_string(db) + ")");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* what) {
  int64_t r = std::max<int64_t>(rank, 1);
  if (dim < -r || dim >= r)
    throw std::out_of_range(std::string("plateau: ") + what + ": dim " + std::to_string(dim) +
                            " is out of range for a tensor of rank " + std::to_string(rank));
  return dim < 0 ? dim + r : dim;
}

namespace {

// Host memory. Blocks of 256 KiB and more are kept on release, by size class, and handed out again:
// fresh memory from the OS page-faults on first touch, which costs a training step's kernels about
// 8% (measured on a 1024² GEMM). At most 1 GiB is kept. 64-byte alignment for vector loads.
class HostAllocator {
 public:
  static constexpr size_t min_cached = 256 << 10;
  static constexpr size_t max_cached_total = size_t(1) << 30;

  void* allocate(size_t bytes) {
    count(static_cast<int64_t>(bytes));
    size_t size = size_class(bytes);
    if (size >= min_cached) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        return p;
      }
    }
    void* p = size ? std::aligned_alloc(64, size) : nullptr;
    if (size && !p) throw std::bad_alloc();
    return p;
  }

  void release(void* p, size_t bytes) {
    count(-static_cast<int64_t>(bytes));
    size_t size = size_class(bytes);
    if (p && size >= min_cached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= max_cached_total) {
        free_[size].push_back(p);
        cached_ += size;
        return;
      }
    }
    std::free(p);
  }

 private:
  // Multiples of 64 bytes; from 256 KiB on, eight classes per power of two (at most 12.5% waste).
  static size_t size_class(size_t bytes) {
    size_t size = (bytes + 63) / 64 * 64;
    if (size < min_cached) return size;
    size_t step = std::bit_floor(size) / 8;
    return (size + step - 1) / step * step;
  }

  void count(int64_t bytes) {
    int64_t now = allocated_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }

 public:
  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {allocated_.load(), peak_.load(), static_cast<int64_t>(cached_)};
  }
  void reset_peak() { peak_.store(allocated_.load()); }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  std::atomic<int64_t> allocated_{0}, peak_{0};
};

HostAllocator& host_allocator() {
  static HostAllocator* allocator = new HostAllocator;  // never destroyed: storages may outlive statics
  return *allocator;
}

}  // namespace

MemoryStats host_memory_stats() { return host_allocator().stats(); }
void reset_peak_host_memory() { host_allocator().reset_peak(); }

Storage::Storage(size_t bytes, Device dev) : nbytes(bytes), device(dev) {
  data = dev.is_cpu() ? host_allocator().allocate(bytes) : cuda::allocate(bytes, dev.index);
}

Storage::~Storage() {
  if (device.is_cpu())
    host_allocator().release(data, nbytes);
  else
    cuda::release(data, nbytes, device.index);
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void check_data_dtype(const Tensor& t, DType wanted) {
  if (!t.defined()) throw std::invalid_argument("plateau: data() of an undefined tensor");
  if (t.dtype() != wanted)
    throw std::invalid_argument(std::string("plateau: data<") + dtype_name(wanted) + ">() of a " +
                                dtype_name(t.dtype()) + " tensor");
  if (!t.device().is_cpu())
    throw std::invalid_argument(std::string("plateau: data<") + dtype_name(wanted) + ">() of a tensor on " +
                                t.device().str() + " (host pointers only); copy it with .to(Device::cpu()) first");
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * static_cast<int64_t>(element_size(dtype()));
}

double Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("plateau: item() needs a one-element tensor, got shape " + shape().str());
  if (!device().is_cpu()) return to_device(detach(), Device::cpu()).item();
  switch (dtype()) {
    case DType::f32: return *data<float>();
    case DType::f64: return *data<double>();
    case DType::i64: return static_cast<double>(*data<int64_t>());
    case DType::b8: return *data<bool>() ? 1.0 : 0.0;
  }
  return 0;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to_dtype(to_device(detach(), Device::cpu()), dtype_of<T>::value).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

Tensor& Tensor::requires_grad_(bool flag) {
  if (!is_leaf())
    throw std::invalid_argument("plateau: requires_grad_ on a non-leaf tensor (made by op '" +
                                std::string(grad_fn()->name()) + "'); use detach().requires_grad_() for a new leaf");
  if (flag && !is_floating_point())
    throw std::invalid_argument(std::string("plateau: only floating tensors can require grad, this one is ") +
                                dtype_name(dtype()));
  impl_->requires_grad = flag;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
    throw std::invalid_argument("plateau: set_grad with shape " + g.shape().str() + " " + dtype_name(g.dtype()) +
                                " on a tensor of shape " + shape().str() + " " + dtype_name(dtype()));
  impl_->grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::zero_grad() { impl_->grad = nullptr; }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

void Tensor::retain_grad() const {
  if (is_leaf()) return;  // leaves keep their gradient anyway
  if (impl_->retains_grad) return;
  impl_->retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  register_hook([weak](const Tensor& g) {
    if (auto impl = weak.lock()) {
      Tensor gd = g.detach();
      impl->grad = impl->grad ? add(Tensor(impl->grad), gd).impl_ptr() : gd.clone().impl_ptr();
    }
    return Tensor();
  });
}

void Tensor::register_hook(GradHook hook) const {
  if (!requires_grad()) throw std::invalid_argument("plateau: register_hook on a tensor that does not require grad");
  autograd::Edge e = autograd::gradient_edge(*this);
  e.node->add_hook(e.output_nr, std::move(hook));
}

Tensor& Tensor::set_name(std::string n) {
  impl_->name = std::move(n);
  return *this;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }
Tensor Tensor::clone() const { return plateau::clone(*this); }
Tensor Tensor::to(DType t) const { return t == dtype() ? *this : to_dtype(*this, t); }
Tensor Tensor::to(Device d) const { return to_device(*this, d); }

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream s;
  s << "Tensor(" << shape().str() << ", " << dtype_name(dtype());
  if (!device().is_cpu()) s << ", " << device().str();
  if (requires_grad()) s << ", requires_grad";
  s << ") {";
  std::vector<double> v = to_vector<double>();
  size_t shown = std::min<size_t>(v.size(), 16);
  s << std::setprecision(6);
  for (size_t i = 0; i < shown; ++i) s << (i ? ", " : "") << v[i];
  if (shown < v.size()) s << ", ... (" << v.size() << " elements)";
  s << "}";
  return s.str();
}

}  // namespace plateau
