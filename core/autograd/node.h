#pragma once
// The tape's nodes. A node is created by an op that ran on inputs requiring grad; it is owned by
// the tensors it produced (their grad_fn) and owns edges to its inputs' nodes, so a graph dies
// with its outputs. Backward rules are ordinary recorded ops: with create_graph they record too,
// which is why every op has second and higher derivatives.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace plateau::autograd {

class Node;
class BackwardContext;

// How a node's outputs relate to its inputs along dimension 0, the example dimension of
// per_example_grads (per_example.h). An op that does not say is refused there, never guessed.
enum class ExampleMap : uint8_t {
  unknown,
  elementwise,  // broadcasting elementwise: an input broadcast along dim 0 is shared by every example
  rowwise,      // output row i depends only on row i of every input, which all have the example dim
  rule,         // the op has a per-example rule for its inputs shared by every example (linear, conv2d, ...)
  mixes,        // output rows combine several input rows: a reduction, slice or cat along dim 0, ...
};

// What per_example_grads asks of a per-example rule for an input, should the input be shared by
// every example (a parameter): each example's gradient [B, *input.shape], or only its squared L2
// norm [B] (which the rule may compute without forming the gradient).
enum class PerExampleWant : uint8_t { none, per_example, sq_norm };
// One input's answer: for an input with the example dim (shared = false) its ordinary gradient; for
// a shared input (shared = true) what was asked.
struct PerExampleGrad {
  Tensor value;
  bool shared = false;
};
using PerExampleFn = std::function<std::vector<PerExampleGrad>(BackwardContext&, const std::vector<PerExampleWant>&)>;

// Composite ops name themselves on the nodes they record, so errors can say "mean inside batch_norm".
class OpScope {
 public:
  explicit OpScope(const char* name);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  static const char* current();

 private:
  const char* prev_;
};

// Points at one forward output of a node (a leaf's accumulator has exactly one).
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t output_nr = 0;
  bool valid() const { return node != nullptr; }
};

struct TensorMeta {
  Shape shape;
  DType dtype = DType::f32;
  Device device;
};

// A tensor kept for backward. Inputs are held strongly; outputs are held without their grad_fn
// (which would be a cycle) and get it back when unpacked inside their own node's backward.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, bool is_output);
  Tensor unpack(const std::shared_ptr<Node>& owner) const;
  bool defined() const { return data_ != nullptr; }

 private:
  std::shared_ptr<TensorImpl> data_;
  uint64_t version_ = 0;
  bool is_output_ = false;
  bool requires_grad_ = false;
  uint32_t output_nr_ = 0;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node(const char* name, uint32_t num_outputs);
  virtual ~Node() = default;

  // grads[i] is the gradient with respect to forward output i (never undefined: the engine fills
  // zeros); returns one gradient per forward input (undefined where none is needed).
  virtual TensorList apply(TensorList&& grads) = 0;
  // Drops what backward needs (saved tensors), after a backward without retain_graph.
  virtual void release() {}
  virtual bool is_accumulator() const { return false; }

  const char* name() const { return name_; }
  const char* scope() const { return scope_; }  // the composite op it was recorded in, or nullptr
  uint64_t sequence_nr() const { return seq_; }
  uint32_t num_outputs() const { return static_cast<uint32_t>(output_meta_.size()); }
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  const std::vector<TensorMeta>& input_meta() const { return input_meta_; }
  const std::vector<TensorMeta>& output_meta() const { return output_meta_; }
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].valid(); }

  ExampleMap example_map() const { return example_map_; }
  void set_example_map(ExampleMap map) { example_map_ = map; }

  void add_input(const Tensor& input);  // edge (if it requires grad) + metadata for one forward input
  void set_output_meta(uint32_t i, const Tensor& output);
  void add_hook(uint32_t output_nr, GradHook hook) { hooks_.push_back({output_nr, std::move(hook)}); }
  const std::vector<std::pair<uint32_t, GradHook>>& hooks() const { return hooks_; }

 protected:
  const char* name_;
  const char* scope_;
  uint64_t seq_;
  ExampleMap example_map_ = ExampleMap::unknown;
  std::vector<Edge> next_edges_;
  std::vector<TensorMeta> input_meta_;
  std::vector<TensorMeta> output_meta_;
  std::vector<std::pair<uint32_t, GradHook>> hooks_;
};

// Sink of a leaf tensor: adds the incoming gradient to the leaf's .grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  TensorList apply(TensorList&& grads) override;
  bool is_accumulator() const override { return true; }
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// What a backward rule sees: the output gradients, the saved tensors, which inputs need a gradient.
class BackwardContext {
 public:
  BackwardContext(Node& node, const std::vector<SavedTensor>& saved, TensorList& grads)
      : node_(node), saved_(saved), grads_(grads) {}
  const Tensor& grad(size_t output = 0) const { return grads_[output]; }
  Tensor saved(size_t i) const;
  bool needs_input_grad(size_t input) const { return node_.needs_input_grad(input); }
  const Node& node() const { return node_; }

 private:
  Node& node_;
  const std::vector<SavedTensor>& saved_;
  TensorList& grads_;
};

using BackwardFn = std::function<TensorList(BackwardContext&)>;

// The node every op records: its backward rule is a function of the context, written in public ops.
class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, uint32_t num_outputs, BackwardFn fn);
  TensorList apply(TensorList&& grads) override;
  void release() override;
  void save(const Tensor& t, bool is_output) { saved_.emplace_back(t, is_output); }

  // Declares how the op treats the example dimension (ExampleMap); chained after record().
  FunctionNode& examples(ExampleMap map) {
    example_map_ = map;
    return *this;
  }
  // The per-example rule of an op whose inputs may be shared by all examples (ExampleMap::rule).
  FunctionNode& per_example(PerExampleFn fn) {
    example_map_ = ExampleMap::rule;
    per_example_ = std::move(fn);
    return *this;
  }
  std::vector<PerExampleGrad> apply_per_example(TensorList&& grads, const std::vector<PerExampleWant>& want);

 private:
  void check_not_released() const;
  BackwardFn fn_;
  PerExampleFn per_example_;
  std::vector<SavedTensor> saved_;
  bool released_ = false;
};

// The gradient edge of a tensor: its grad_fn output, or its leaf accumulator (created on demand).
// Invalid when the tensor does not require grad.
Edge gradient_edge(const Tensor& t);

}  // namespace plateau::autograd
