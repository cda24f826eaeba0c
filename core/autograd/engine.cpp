// The backward engine: walks the tape from the outputs in reverse order of creation, sums the
// gradients flowing into each node, undoes broadcasting, runs hooks and each node's rule.
#include <algorithm>
#include <cmath>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "core/autograd/autograd.h"
#include "core/autograd/graph_walk.h"
#include "core/ops/ops.h"

namespace plateau {

using autograd::Edge;
using autograd::Node;

namespace {

struct NodeState {
  int dependencies = 0;  // gradients still to arrive (number of edges pointing at this node)
  bool reaches = false;  // is, or leads to, something we want the gradient of
  bool needed = false;   // its rule must run: some input leads to a wanted gradient
  bool queued = false;
  TensorList buffer;  // summed gradient per forward output
};

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error("plateau: " + msg); }

std::string describe(const Node& n) {
  return "'" + std::string(n.name()) + "' (#" + std::to_string(n.sequence_nr()) + ")";
}

// Sums a gradient down to the shape of the input it flows into (the inverse of broadcasting).
Tensor reduce_to_shape(const Tensor& g, const autograd::TensorMeta& meta, const Node& node, size_t input) {
  if (g.shape() == meta.shape) return g;
  int64_t lead = g.dim() - meta.shape.size();
  bool ok = lead >= 0;
  for (int64_t i = 0; ok && i < meta.shape.size(); ++i) ok = meta.shape[i] == g.shape()[lead + i] || meta.shape[i] == 1;
  if (!ok) {
    std::ostringstream msg;
    msg << "backward of op " << describe(node) << " returned a gradient of shape " << g.shape().str() << " for input "
        << input << " of shape " << meta.shape.str();
    fail(msg.str());
  }
  return sum_to_shape(g, meta.shape);
}

void check_finite(const Tensor& g, const Node& node, size_t input) {
  if (!g.defined() || !g.is_floating_point()) return;
  Tensor bad = logical_not(isfinite(g)).to(DType::f64);
  if (sum(bad).item() > 0) {
    std::ostringstream msg;
    msg << "anomaly mode: the backward of op " << describe(node)
        << " produced NaN or Inf in the gradient for its input " << input << " (shape " << g.shape().str() << ")";
    fail(msg.str());
  }
}

class GraphTask {
 public:
  explicit GraphTask(bool keep_graph) : keep_graph_(keep_graph) {}

  // Counts dependencies over everything reachable from the roots.
  void discover(const std::vector<Edge>& roots) {
    std::vector<Node*> nodes;
    for (const Edge& e : roots) nodes.push_back(e.node.get());
    autograd::for_each_edge_below(nodes, seen_, [&](Node* child) { state_[child].dependencies++; });
  }

  // Marks which nodes lead to a target (all of them when targets is empty: backward()).
  void mark_needed(const std::unordered_set<Node*>& targets) {
    if (targets.empty()) {
      for (Node* n : seen_) state_[n].reaches = state_[n].needed = true;
      return;
    }
    // A node is decided after all of its inputs.
    autograd::for_each_post_order(seen_, [&](Node* n) {
      bool needed = false;
      for (const Edge& e : n->next_edges()) needed = needed || (e.valid() && state_[e.node.get()].reaches);
      state_[n].needed = needed;
      state_[n].reaches = needed || targets.count(n) > 0;
    });
  }

  void add_gradient(const Edge& e, Tensor g) {
    NodeState& s = state_[e.node.get()];
    if (s.buffer.empty()) s.buffer.resize(e.node->num_outputs());
    Tensor& slot = s.buffer[e.output_nr];
    slot = slot.defined() ? add(slot, g) : g;
  }

  // Runs the graph; on_ready(node, buffer) sees each node's summed output gradients before its rule.
  template <typename OnReady>
  void run(const std::vector<Edge>& roots, const TensorList& root_grads, bool accumulate, OnReady on_ready) {
    auto later_first = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
    std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
    for (size_t i = 0; i < roots.size(); ++i)
      if (roots[i].valid()) add_gradient(roots[i], root_grads[i]);
    for (const Edge& e : roots) {
      NodeState& s = state_[e.node.get()];
      if (e.valid() && s.dependencies == 0 && !s.queued) {
        s.queued = true;
        ready.push(e.node.get());
      }
    }
    while (!ready.empty()) {
      Node* node = ready.top();
      ready.pop();
      NodeState& s = state_[node];
      TensorList grads = std::move(s.buffer);
      grads.resize(node->num_outputs());
      for (uint32_t i = 0; i < node->num_outputs(); ++i) {
        const auto& meta = node->output_meta()[i];
        if (!grads[i].defined() && is_floating(meta.dtype)) grads[i] = zeros(meta.shape, meta.dtype);
      }
      for (const auto& [output_nr, hook] : node->hooks()) {
        Tensor replaced = hook(grads[output_nr]);
        if (replaced.defined()) grads[output_nr] = replaced;
      }
      on_ready(node, grads);
      TensorList input_grads;
      if (s.needed && !(node->is_accumulator() && !accumulate)) {
        input_grads = node->apply(std::move(grads));
        if (!keep_graph_) node->release();
      }
      const auto& edges = node->next_edges();
      for (size_t i = 0; i < edges.size(); ++i) {
        const Edge& e = edges[i];
        if (!e.valid()) continue;
        NodeState& next = state_[e.node.get()];
        if (i < input_grads.size() && input_grads[i].defined() && next.reaches) {
          Tensor g = reduce_to_shape(input_grads[i], node->input_meta()[i], *node, i);
          if (g.dtype() != node->input_meta()[i].dtype)
            fail("backward of op " + describe(*node) + " returned a " + dtype_name(g.dtype()) + " gradient for a " +
                 dtype_name(node->input_meta()[i].dtype) + " input " + std::to_string(i));
          if (AnomalyMode::is_enabled()) check_finite(g, *node, i);
          add_gradient(e, std::move(g));
        }
        if (--next.dependencies == 0 && !next.queued) {
          next.queued = true;
          ready.push(e.node.get());
        }
      }
    }
  }

 private:
  bool keep_graph_;
  std::unordered_set<Node*> seen_;
  std::unordered_map<Node*, NodeState> state_;
};

TensorList root_gradients(const TensorList& outputs, const TensorList& grad_outputs) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    fail("got " + std::to_string(grad_outputs.size()) + " grad_outputs for " + std::to_string(outputs.size()) +
         " outputs");
  TensorList grads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (!out.defined()) fail("backward/grad got an undefined output " + std::to_string(i));
    if (!out.requires_grad())
      fail(
          "output " + std::to_string(i) + " (shape " + out.shape().str() +
          ") does not require grad: nothing it depends on has requires_grad set, or it was computed under NoGradGuard");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      if (out.numel() != 1)
        fail("backward of a non-scalar output of shape " + out.shape().str() +
             " needs grad_outputs (a tensor of the same shape); use sum() for a scalar first, or pass them");
      g = ones_like(out);
    } else if (g.shape() != out.shape()) {
      fail("grad_output " + std::to_string(i) + " has shape " + g.shape().str() + " but its output has shape " +
           out.shape().str());
    } else if (g.dtype() != out.dtype()) {
      fail(std::string("grad_output has dtype ") + dtype_name(g.dtype()) + " but its output is " +
           dtype_name(out.dtype()));
    } else if (g.device() != out.device()) {
      fail("grad_output is on " + g.device().str() + " but its output is on " + out.device().str());
    }
    grads.push_back(g);
  }
  return grads;
}

}  // namespace

TensorList grad(TensorList outputs, const TensorList& inputs, const GradOptions& options) {
  TensorList root_grads = root_gradients(outputs, options.grad_outputs);
  std::vector<Edge> roots;
  for (const Tensor& o : outputs) roots.push_back(autograd::gradient_edge(o));
  TensorList().swap(outputs);
  std::vector<Edge> targets;
  std::unordered_set<Node*> target_nodes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad())
      fail("grad: input " + std::to_string(i) + " does not require grad");
    targets.push_back(autograd::gradient_edge(inputs[i]));
    target_nodes.insert(targets.back().node.get());
  }
  bool keep = options.retain_graph.value_or(options.create_graph);
  std::optional<NoGradGuard> no_grad;
  std::optional<EnableGradGuard> with_grad;
  if (options.create_graph)
    with_grad.emplace();
  else
    no_grad.emplace();

  GraphTask task(keep);
  task.discover(roots);
  task.mark_needed(target_nodes);
  TensorList result(inputs.size());
  task.run(roots, root_grads, /*accumulate=*/false, [&](Node* node, const TensorList& grads) {
    for (size_t i = 0; i < targets.size(); ++i)
      if (targets[i].node.get() == node) result[i] = grads[targets[i].output_nr];
  });
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (result[i].defined()) {
      if (!options.create_graph) result[i] = result[i].detach();
      continue;
    }
    if (!options.allow_unused)
      fail("grad: input " + std::to_string(i) + " (shape " + inputs[i].shape().str() +
           ") was not used to compute the outputs; pass allow_unused=true if that is intended");
  }
  return result;
}

void backward(const TensorList& outputs, const TensorList& grad_outputs, bool retain_graph, bool create_graph) {
  TensorList root_grads = root_gradients(outputs, grad_outputs);
  std::vector<Edge> roots;
  for (const Tensor& o : outputs) roots.push_back(autograd::gradient_edge(o));
  std::optional<NoGradGuard> no_grad;
  std::optional<EnableGradGuard> with_grad;
  if (create_graph)
    with_grad.emplace();
  else
    no_grad.emplace();
  GraphTask task(retain_graph || create_graph);
  task.discover(roots);
  task.mark_needed({});
  task.run(roots, root_grads, /*accumulate=*/true, [](Node*, const TensorList&) {});
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph, bool create_graph) const {
  plateau::backward({*this}, grad_output.defined() ? TensorList{grad_output} : TensorList{}, retain_graph,
                    create_graph);
}

}  // namespace plateau
