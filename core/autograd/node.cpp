#include "core/autograd/node.h"

#include <sstream>
#include <stdexcept>

#include "core/autograd/grad_mode.h"
#include "core/ops/ops.h"

namespace plateau {

namespace {
thread_local bool grad_mode_enabled = true;
thread_local uint64_t next_sequence_nr = 0;
thread_local const char* current_op_scope = nullptr;
bool anomaly_mode_enabled = false;
}  // namespace

bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }
bool AnomalyMode::is_enabled() { return anomaly_mode_enabled; }
void AnomalyMode::set_enabled(bool enabled) { anomaly_mode_enabled = enabled; }

namespace autograd {

OpScope::OpScope(const char* name) : prev_(current_op_scope) {
  if (!prev_) current_op_scope = name;  // the outermost composite names its nodes
}
OpScope::~OpScope() { current_op_scope = prev_; }
const char* OpScope::current() { return current_op_scope; }

Node::Node(const char* name, uint32_t num_outputs) : name_(name), scope_(current_op_scope), seq_(next_sequence_nr++) {
  output_meta_.resize(num_outputs);
}

void Node::add_input(const Tensor& input) {
  if (input.defined() && input.requires_grad()) {
    next_edges_.push_back(gradient_edge(input));
    input_meta_.push_back({input.shape(), input.dtype(), input.device()});
  } else {
    // Kept for inputs without an edge too: per_example_grads reads data inputs' shapes.
    next_edges_.emplace_back();
    if (input.defined())
      input_meta_.push_back({input.shape(), input.dtype(), input.device()});
    else
      input_meta_.emplace_back();
  }
}

void Node::set_output_meta(uint32_t i, const Tensor& output) {
  output_meta_[i] = {output.shape(), output.dtype(), output.device()};
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output) {
  if (!t.defined()) return;
  version_ = t.version();
  is_output_ = is_output;
  requires_grad_ = t.requires_grad();
  if (!is_output) {
    data_ = t.impl_ptr();
    return;
  }
  // Keep the data but not the grad_fn (the node owning this saved tensor): no reference cycle.
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->shape = t.shape();
  impl->strides = t.strides();
  impl->offset = t.offset();
  impl->dtype = t.dtype();
  output_nr_ = t.impl()->output_nr;
  data_ = std::move(impl);
}

Tensor SavedTensor::unpack(const std::shared_ptr<Node>& owner) const {
  if (!data_) return {};
  if (data_->storage->version != version_) {
    std::ostringstream msg;
    msg << "plateau: a tensor of shape " << data_->shape.str() << " saved by op '" << owner->name() << "' (#"
        << owner->sequence_nr() << ") for backward was modified in place (version " << data_->storage->version
        << ", saved at version " << version_ << "); clone() it before writing to it, or write before the op runs";
    throw std::runtime_error(msg.str());
  }
  if (!is_output_) return Tensor(data_);
  auto impl = std::make_shared<TensorImpl>(*data_);
  impl->requires_grad = requires_grad_;
  if (requires_grad_) {
    impl->grad_fn = owner;
    impl->output_nr = output_nr_;
  }
  return Tensor(std::move(impl));
}

Tensor BackwardContext::saved(size_t i) const { return saved_.at(i).unpack(node_.shared_from_this()); }

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : Node("AccumulateGrad", 1), leaf_(leaf) {
  output_meta_[0] = {leaf->shape, leaf->dtype, leaf->storage->device};
}

TensorList AccumulateGrad::apply(TensorList&& grads) {
  auto leaf = leaf_.lock();
  if (!leaf) return {};
  Tensor g = std::move(grads[0]);
  if (!GradMode::is_enabled()) g = g.detach();
  if (!leaf->grad) {
    // .grad() must own its buffer: a later in-place accumulation must not write into someone else's
    // tensor. A contiguous gradient whose storage nobody else holds is taken as it is (the common
    // case: a fresh kernel output); anything shared is copied.
    bool owned = g.impl()->storage.use_count() == 1 && g.is_contiguous();
    leaf->grad = GradMode::is_enabled() || owned ? g.impl_ptr() : g.clone().impl_ptr();
  } else if (GradMode::is_enabled()) {
    leaf->grad = add(Tensor(leaf->grad), g).impl_ptr();
  } else {
    Tensor acc(leaf->grad);
    add_(acc, g);
  }
  return {};
}

FunctionNode::FunctionNode(const char* name, uint32_t num_outputs, BackwardFn fn)
    : Node(name, num_outputs), fn_(std::move(fn)) {}

void FunctionNode::check_not_released() const {
  if (!released_) return;
  std::ostringstream msg;
  msg << "plateau: backward through op '" << name_ << "' (#" << seq_
      << ") whose graph was already freed by an earlier backward; pass retain_graph=true to the "
         "first backward/grad call to run backward twice";
  throw std::runtime_error(msg.str());
}

TensorList FunctionNode::apply(TensorList&& grads) {
  check_not_released();
  BackwardContext ctx(*this, saved_, grads);
  return fn_(ctx);
}

std::vector<PerExampleGrad> FunctionNode::apply_per_example(TensorList&& grads,
                                                            const std::vector<PerExampleWant>& want) {
  if (!per_example_) throw std::logic_error(std::string("plateau: op '") + name_ + "' has no per-example rule");
  check_not_released();
  BackwardContext ctx(*this, saved_, grads);
  return per_example_(ctx, want);
}

void FunctionNode::release() {
  released_ = true;
  saved_.clear();
  saved_.shrink_to_fit();
}

Edge gradient_edge(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (!impl || !impl->requires_grad) return {};
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  std::shared_ptr<Node> acc = impl->grad_accumulator;
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    impl->grad_accumulator = acc;
  }
  return {acc, 0};
}

bool should_record(const TensorList& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

static FunctionNode& record_impl(const char* name, const TensorList& inputs, Tensor* const* outputs, size_t n_outputs,
                                 const TensorList& saved, BackwardFn backward) {
  auto node = std::make_shared<FunctionNode>(name, static_cast<uint32_t>(n_outputs), std::move(backward));
  for (const Tensor& in : inputs) node->add_input(in);
  for (size_t i = 0; i < n_outputs; ++i) {
    Tensor& out = *outputs[i];
    if (!out.is_floating_point()) continue;  // indices carry no gradient
    TensorImpl* impl = out.impl();
    impl->requires_grad = true;
    impl->grad_fn = node;
    impl->output_nr = static_cast<uint32_t>(i);
    node->set_output_meta(static_cast<uint32_t>(i), out);
  }
  // After the outputs are wired, so a saved output remembers which output it is.
  for (const Tensor& s : saved) {
    bool is_output = false;
    for (size_t i = 0; i < n_outputs; ++i) is_output = is_output || s.is_same(*outputs[i]);
    node->save(s, is_output);
  }
  if (node.use_count() == 1)
    throw std::logic_error(std::string("plateau: op '") + name + "' recorded a node without a floating output");
  return *node;  // owned by the outputs' grad_fn
}

FunctionNode& record(const char* name, const TensorList& inputs, std::initializer_list<Tensor*> outputs,
                     const TensorList& saved, BackwardFn backward) {
  return record_impl(name, inputs, outputs.begin(), outputs.size(), saved, std::move(backward));
}

FunctionNode& record(const char* name, const TensorList& inputs, const std::vector<Tensor*>& outputs,
                     const TensorList& saved, BackwardFn backward) {
  return record_impl(name, inputs, outputs.data(), outputs.size(), saved, std::move(backward));
}

}  // namespace autograd
}  // namespace plateau
