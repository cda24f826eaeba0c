#pragma once
// Tensor: a cheap handle to shared storage with shape, strides, offset, dtype and device (value
// semantics for the handle, like libtorch). Autograd state lives in the impl: whether it requires
// grad, the node that produced it (grad_fn) and, for leaves, its accumulated gradient.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace plateau {

namespace autograd {
class Node;
}

// Raw memory of one device. `version` counts in-place writes, shared by every view of the storage,
// so the tape can tell when a tensor saved for backward was modified.
struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  uint64_t version = 0;
};

// Host memory held by live tensors (bytes requested, so independent of the allocator's cache), and
// the most held at once since the last reset_peak(): the measure of a transform's memory cost.
struct MemoryStats {
  int64_t allocated = 0;
  int64_t peak = 0;
  int64_t cached = 0;  // freed blocks the allocator keeps for reuse
};
MemoryStats host_memory_stats();
void reset_peak_host_memory();  // peak := allocated

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // Autograd. A leaf that requires grad accumulates into `grad` through its accumulator node;
  // an interior tensor has grad_fn set and output_nr naming which output of that node it is.
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> grad;
  // Held strongly (it only points back weakly), so hooks registered on a leaf before any op uses
  // it are not lost with a short-lived accumulator.
  std::shared_ptr<autograd::Node> grad_accumulator;
  std::string name;  // optional, shown by tape printing
};

using GradHook = std::function<class Tensor(const class Tensor&)>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  const Shape& shape() const { return impl_->shape; }
  const Shape& sizes() const { return impl_->shape; }
  int64_t size(int64_t dim) const;
  int64_t dim() const { return impl_->shape.size(); }
  int64_t numel() const { return impl_->shape.numel(); }
  const Shape& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device; }
  bool is_contiguous() const;
  bool is_floating_point() const { return is_floating(dtype()); }

  // Pointer to the first element (offset applied); T must match dtype (checked).
  template <typename T>
  T* data() const;
  void* raw_data() const;
  // Value of a one-element tensor, converted to double (any dtype).
  double item() const;
  template <typename T>
  T item() const {
    return static_cast<T>(item());
  }
  // Copies the elements in row-major order, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;

  // Autograd.
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& requires_grad_(bool flag = true);
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl_->grad_fn; }
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the accumulated gradient
  // Fills .grad() of the leaves this tensor depends on. A non-scalar tensor needs grad_output.
  void backward(const Tensor& grad_output = {}, bool retain_graph = false, bool create_graph = false) const;
  Tensor detach() const;     // shares storage, no grad_fn, does not require grad
  void retain_grad() const;  // keep .grad() of an interior tensor after backward
  // Calls hook with the gradient flowing into this tensor; a defined return value replaces it.
  void register_hook(GradHook hook) const;
  uint64_t version() const { return impl_->storage->version; }
  void bump_version() const { ++impl_->storage->version; }
  Tensor& set_name(std::string name);
  const std::string& name() const { return impl_->name; }

  // Common conversions (recorded ops where they are differentiable).
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;  // recorded: gradients flow back to this tensor's device
  std::string str() const;         // shape, dtype and values (abbreviated when large)

 private:
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

// Checks dtype for data<T>(); throws with both names on mismatch.
void check_data_dtype(const Tensor& t, DType wanted);

template <typename T>
T* Tensor::data() const {
  check_data_dtype(*this, dtype_of<T>::value);
  return static_cast<T*>(impl_->storage->data) + impl_->offset;
}

}  // namespace plateau
