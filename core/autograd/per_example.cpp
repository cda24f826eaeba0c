// The per-example backward pass (see per_example.h). It walks the tape like the engine, in reverse
// order of creation, with two kinds of gradient:
//   - a batched gradient, for a tensor whose dim 0 is the examples: the ordinary gradient of
//     Σ_b losses[b], whose row b is example b's own gradient because rows never mix;
//   - a shared gradient [B, *shape], for a tensor shared by every example (a parameter, or a
//     reshape of one): row b is example b's gradient of it.
// A node whose output is batched hands a batched gradient on to inputs that have the example dim
// and, through its ExampleMap, a shared gradient to inputs broadcast over the examples. A node whose
// output is shared must be computed from parameters only; its rule, being linear in the output
// gradient, is applied to each example's row.
#include "core/autograd/per_example.h"

#include <algorithm>
#include <deque>
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
using autograd::ExampleMap;
using autograd::Node;
using autograd::PerExampleWant;

namespace autograd {

Tensor sum_to_example_shape(const Tensor& full, const Shape& shape) {
  const int64_t rank = full.dim();
  if (shape.size() > rank || (shape.size() == rank && shape[0] != 1))
    throw std::logic_error("plateau: per-example gradient of shape " + full.shape().str() +
                           " for an operand of shape " + shape.str() + " that is not broadcast over the examples");
  Shape target{full.size(0)}, out{full.size(0)};
  for (int64_t d = 1; d < rank; ++d) {
    const int64_t i = d - (rank - shape.size());
    target.push_back(i < 0 ? 1 : shape[i]);
  }
  for (int64_t d : shape) out.push_back(d);
  return reshape(sum_to_shape(full, target), out);
}

Tensor squared_norms(const Tensor& per_example) {
  Tensor flat = reshape(per_example, {per_example.size(0), -1});
  return sum(flat * flat, {1});
}

}  // namespace autograd

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: per_example_grads: " + msg); }

std::string describe(const Node& n) {
  std::string s = "op '" + std::string(n.name()) + "' (#" + std::to_string(n.sequence_nr());
  if (n.scope()) s += ", inside " + std::string(n.scope());
  return s + ")";
}

const char* kMixingHint =
    "every op between the parameters and the losses must keep the examples (dimension 0) apart. Batch norm in "
    "training mode mixes them through its batch statistics: run it in eval mode (training = false) or use "
    "group_norm or layer_norm";

[[noreturn]] void fail_mixes(const Node& n, const std::string& what) {
  fail(describe(n) + " " + what +
       ", so each example's loss depends on other examples and has no gradient of its "
       "own; " +
       kMixingHint);
}

Shape with_batch(int64_t batch, const Shape& shape) {
  Shape s{batch};
  for (int64_t d : shape) s.push_back(d);
  return s;
}

// Whether an input of shape `in` of an elementwise op has the example dim, like its output (as
// opposed to being broadcast over the examples).
bool has_example_dim(const Shape& in, const Shape& out, int64_t batch) {
  return in.size() == out.size() && !in.empty() && in[0] == batch;
}

class PerExampleTask {
 public:
  PerExampleTask(int64_t batch, const TensorList& params, bool norms) : batch_(batch), norms_(norms) {
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor& p = params[i];
      if (!p.defined() || !p.requires_grad() || p.grad_fn())
        fail("parameter " + std::to_string(i) + " must be a leaf tensor that requires grad (got " +
             (p.defined() ? "shape " + p.shape().str() + (p.grad_fn() ? ", computed by an op" : ", not requiring grad")
                          : std::string("an undefined tensor")) +
             ")");
      Node* acc = autograd::gradient_edge(p).node.get();
      if (param_index_.count(acc)) fail("parameter " + std::to_string(i) + " is listed twice");
      param_index_[acc] = i;
      results_.push_back(Tensor());
      squared_.push_back(false);
      shapes_.push_back(p.shape());
      dtypes_.push_back(p.dtype());
    }
  }

  void run(const Tensor& losses) {
    Edge root = autograd::gradient_edge(losses);
    discover(root);
    classify();
    State& rs = state_[root.node.get()];
    rs.batched.resize(root.node->num_outputs());
    rs.batched[root.output_nr] = ones_like(losses);
    auto later_first = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
    std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
    ready.push(root.node.get());
    while (!ready.empty()) {
      Node* node = ready.top();
      ready.pop();
      if (state_[node].leads) visit(node);
      state_[node].batched.clear();
      state_[node].shared.clear();
      for (const Edge& e : node->next_edges())
        if (e.valid() && --state_[e.node.get()].dependencies == 0) ready.push(e.node.get());
    }
  }

  TensorList grads() {
    TensorList out;
    for (size_t i = 0; i < results_.size(); ++i)
      out.push_back(results_[i].defined() ? results_[i].contiguous()
                                          : zeros(with_batch(batch_, shapes_[i]), dtypes_[i]));
    return out;
  }

  Tensor norms(DType dtype) {
    Tensor total = zeros({batch_}, dtype);
    for (size_t i = 0; i < results_.size(); ++i)
      if (results_[i].defined()) total = total + (squared_[i] ? results_[i] : autograd::squared_norms(results_[i]));
    return sqrt(total);
  }

 private:
  struct State {
    int dependencies = 0;      // edges into this node not yet processed
    int uses = 0;              // edges into this node in the whole graph
    bool leads = false;        // lies on a path to a parameter
    bool params_only = false;  // computed from parameters alone (no data input anywhere below)
    TensorList batched, shared;
  };

  void discover(const Edge& root) {
    autograd::for_each_edge_below({root.node.get()}, seen_, [&](Node* child) {
      State& s = state_[child];
      s.dependencies++;
      s.uses++;
    });
  }

  // Post-order over the graph: leads (a parameter is below) and params_only (nothing but parameters
  // and constants below; an input without gradient whose dim 0 has the batch size is data).
  void classify() {
    autograd::for_each_post_order(seen_, [&](Node* n) {
      State& s = state_[n];
      if (n->is_accumulator()) {
        s.leads = s.params_only = param_index_.count(n) > 0;
        return;
      }
      s.params_only = true;
      const auto& edges = n->next_edges();
      for (size_t i = 0; i < edges.size(); ++i) {
        if (edges[i].valid()) {
          const State& c = state_[edges[i].node.get()];
          s.leads = s.leads || c.leads;
          s.params_only = s.params_only && c.params_only;
        } else {
          const Shape& in = n->input_meta()[i].shape;
          if (!in.empty() && in[0] == batch_) s.params_only = false;
        }
      }
    });
  }

  static void add_to(TensorList& slots, size_t i, size_t n, Tensor g) {
    if (slots.empty()) slots.resize(n);
    slots[i] = slots[i].defined() ? slots[i] + g : std::move(g);
  }

  void send_batched(Node& from, size_t input, Tensor g) {
    const Edge& e = from.next_edges()[input];
    State& child = state_[e.node.get()];
    if (!child.leads || !g.defined()) return;
    if (child.params_only)
      fail(describe(from) + " uses a tensor computed from parameters alone, of shape " +
           from.input_meta()[input].shape.str() + ", as if its dim 0 were the " + std::to_string(batch_) +
           " examples; per-example gradients need parameters shared by every example");
    const Shape& shape = from.input_meta()[input].shape;
    if (g.shape() != shape) g = sum_to_shape(g, shape);
    add_to(child.batched, e.output_nr, e.node->num_outputs(), std::move(g));
  }

  void send_shared(Node& from, size_t input, Tensor g, const std::string& why) {
    const Edge& e = from.next_edges()[input];
    State& child = state_[e.node.get()];
    if (!child.leads || !g.defined()) return;
    if (!child.params_only) {
      // A tensor shared by every example but computed from them: blame the op that combined the
      // examples (the reduction inside a batch norm) rather than the one that broadcast the result.
      if (Node* culprit = mixing_op_below(e.node.get()))
        fail_mixes(*culprit, culprit->example_map() == ExampleMap::rule ? "contracts the example dimension"
                                                                        : "works along dimension 0");
      fail_mixes(from, why);
    }
    add_to(child.shared, e.output_nr, e.node->num_outputs(), std::move(g));
  }

  // The nearest op below n, among the nodes that depend on the data, that combines examples: one
  // declared as mixing them, or a matmul-like op (with a per-example rule) contracting them.
  Node* mixing_op_below(Node* n) {
    std::deque<Node*> queue{n};
    std::unordered_set<Node*> visited{n};
    while (!queue.empty()) {
      Node* m = queue.front();
      queue.pop_front();
      if (m->example_map() == ExampleMap::mixes || m->example_map() == ExampleMap::rule) return m;
      for (const Edge& e : m->next_edges())
        if (e.valid() && !state_[e.node.get()].params_only && visited.insert(e.node.get()).second)
          queue.push_back(e.node.get());
    }
    return nullptr;
  }

  // sq_norm only for an input that is a parameter used once: a parameter used twice needs the sum of
  // its per-example gradients before the norm.
  PerExampleWant want_for(const Edge& e) {
    if (!e.valid() || !state_[e.node.get()].leads) return PerExampleWant::none;
    const State& s = state_[e.node.get()];
    return norms_ && e.node->is_accumulator() && s.uses == 1 ? PerExampleWant::sq_norm : PerExampleWant::per_example;
  }

  void visit(Node* node) {
    State& s = state_[node];
    if (node->is_accumulator()) {
      auto it = param_index_.find(node);
      if (it == param_index_.end()) return;
      if (!s.batched.empty())
        throw std::logic_error("plateau: per_example_grads: a batched gradient reached a parameter");
      Tensor& r = results_[it->second];
      if (s.shared.empty() || !s.shared[0].defined()) return;
      r = r.defined() ? r + s.shared[0] : s.shared[0];
      return;
    }
    if (!s.shared.empty() && !s.batched.empty())
      fail(describe(*node) + " produced a tensor used both as shared by every example and as one row per example");
    if (!s.shared.empty())
      visit_shared(*node, s);
    else
      visit_batched(*node, s);
  }

  // A node computed from parameters only, whose outputs are shared by all examples.
  void visit_shared(Node& node, State& s) {
    if (!s.params_only) fail_mixes(node, "turns tensors that hold one row per example into one shared by all of them");
    const uint32_t outputs = node.num_outputs();
    s.shared.resize(outputs);
    for (uint32_t o = 0; o < outputs; ++o) {
      const auto& meta = node.output_meta()[o];
      if (!s.shared[o].defined() && is_floating(meta.dtype))
        s.shared[o] = zeros(with_batch(batch_, meta.shape), meta.dtype);
    }
    const auto& edges = node.next_edges();
    const std::string name = node.name();
    if (outputs == 1 && edges.size() == 1 &&
        (name == "reshape" || name == "view" || name == "squeeze" || name == "unsqueeze")) {
      send_shared(node, 0, reshape(s.shared[0], with_batch(batch_, node.input_meta()[0].shape)), "");
      return;
    }
    // The rule is linear in the output gradient: apply it to each example's row.
    std::vector<TensorList> rows(edges.size());
    for (int64_t b = 0; b < batch_; ++b) {
      TensorList g;
      for (uint32_t o = 0; o < outputs; ++o)
        g.push_back(s.shared[o].defined() ? squeeze(slice(s.shared[o], 0, b, b + 1), 0) : Tensor());
      TensorList in = node.apply(std::move(g));
      for (size_t i = 0; i < edges.size(); ++i) {
        if (!edges[i].valid() || i >= in.size() || !in[i].defined()) continue;
        const Shape& shape = node.input_meta()[i].shape;
        rows[i].push_back(in[i].shape() == shape ? in[i] : sum_to_shape(in[i], shape));
      }
    }
    for (size_t i = 0; i < edges.size(); ++i)
      if (rows[i].size() == static_cast<size_t>(batch_)) send_shared(node, i, stack(rows[i], 0), "");
  }

  // A node whose outputs hold one row per example.
  void visit_batched(Node& node, State& s) {
    const uint32_t outputs = node.num_outputs();
    s.batched.resize(outputs);
    for (uint32_t o = 0; o < outputs; ++o) {
      const auto& meta = node.output_meta()[o];
      if (!is_floating(meta.dtype)) continue;
      if (meta.shape.empty() || meta.shape[0] != batch_)
        fail(describe(node) + " produced a tensor of shape " + meta.shape.str() +
             " on the way to the losses: its dim 0 is not the " + std::to_string(batch_) + " examples; " + kMixingHint);
      if (!s.batched[o].defined()) s.batched[o] = zeros(meta.shape, meta.dtype);
    }
    const auto& edges = node.next_edges();
    switch (node.example_map()) {
      case ExampleMap::unknown:
        fail(describe(node) +
             " has no per-example rule (it does not declare how it treats the example dimension); "
             "compute per-example gradients of a model without it, or loop over the examples");
      case ExampleMap::mixes: fail_mixes(node, "works along dimension 0");
      case ExampleMap::rowwise:
      case ExampleMap::elementwise: {
        const Shape out = node.output_meta()[0].shape;
        TensorList in = node.apply(std::move(s.batched));
        for (size_t i = 0; i < edges.size(); ++i) {
          if (!edges[i].valid() || !state_[edges[i].node.get()].leads || i >= in.size()) continue;
          const Shape& shape = node.input_meta()[i].shape;
          const bool rowwise = node.example_map() == ExampleMap::rowwise;
          if (rowwise ? !shape.empty() && shape[0] == batch_ : has_example_dim(shape, out, batch_)) {
            send_batched(node, i, in[i]);
          } else if (!rowwise) {
            if (in[i].dim() != out.size() || in[i].size(0) != batch_)
              throw std::logic_error("plateau: the backward of " + describe(node) + " summed a broadcast gradient");
            send_shared(node, i, autograd::sum_to_example_shape(in[i], shape),
                        "broadcasts a tensor computed from the examples over them");
          } else {
            fail(describe(node) + " has no per-example rule for its input " + std::to_string(i) + " of shape " +
                 shape.str() + ", which is shared by every example");
          }
        }
        return;
      }
      case ExampleMap::rule: {
        std::vector<PerExampleWant> want;
        for (const Edge& e : edges) want.push_back(want_for(e));
        auto& fn = dynamic_cast<autograd::FunctionNode&>(node);
        std::vector<autograd::PerExampleGrad> in = fn.apply_per_example(std::move(s.batched), want);
        for (size_t i = 0; i < edges.size() && i < in.size(); ++i) {
          if (want[i] == PerExampleWant::none) continue;
          if (!in[i].shared) {
            send_batched(node, i, in[i].value);
          } else if (want[i] == PerExampleWant::sq_norm) {
            if (!state_[edges[i].node.get()].params_only)
              fail_mixes(node, "contracts the example dimension of its input " + std::to_string(i));
            const size_t p = param_index_.at(edges[i].node.get());
            results_[p] = in[i].value;
            squared_[p] = true;
          } else {
            send_shared(node, i, in[i].value, "contracts the example dimension of its input " + std::to_string(i));
          }
        }
        return;
      }
    }
  }

  int64_t batch_;
  bool norms_;
  std::unordered_map<Node*, size_t> param_index_;
  TensorList results_;
  std::vector<Shape> shapes_;
  std::vector<DType> dtypes_;
  std::vector<bool> squared_;  // results_[i] already holds squared norms [B] (norms mode, a parameter used once)
  std::unordered_set<Node*> seen_;
  std::unordered_map<Node*, State> state_;
};

int64_t check_losses(const Tensor& losses) {
  if (!losses.defined()) fail("losses is undefined");
  if (losses.dim() != 1)
    fail("losses must be [B], one loss per example (e.g. cross_entropy with reduction none), got shape " +
         losses.shape().str());
  if (losses.size(0) == 0) fail("losses is empty: there are no examples");
  if (!losses.requires_grad() || !losses.grad_fn())
    fail("losses must be computed from the parameters by recorded ops (it does not require grad, or is a leaf)");
  return losses.size(0);
}

// One example: its gradient is the gradient, and no op can mix examples.
TensorList single_example_grads(const Tensor& losses, const TensorList& params) {
  GradOptions options;
  options.grad_outputs = {ones_like(losses)};
  options.retain_graph = true;
  options.allow_unused = true;
  TensorList g = grad({losses}, params, options);
  for (size_t i = 0; i < g.size(); ++i) g[i] = unsqueeze(g[i].defined() ? g[i] : zeros_like(params[i]), 0);
  return g;
}

}  // namespace

TensorList per_example_grads(const Tensor& losses, const TensorList& params) {
  const int64_t batch = check_losses(losses);
  NoGradGuard no_grad;
  PerExampleTask task(batch, params, /*norms=*/false);  // checks the parameters, for B = 1 too
  if (batch == 1) return single_example_grads(losses, params);
  task.run(losses);
  return task.grads();
}

Tensor per_example_grad_norms(const Tensor& losses, const TensorList& params) {
  const int64_t batch = check_losses(losses);
  NoGradGuard no_grad;
  PerExampleTask task(batch, params, /*norms=*/true);  // checks the parameters, for B = 1 too
  if (batch == 1) {
    Tensor total = zeros({1}, losses.dtype());
    for (const Tensor& g : single_example_grads(losses, params)) total = total + autograd::squared_norms(g);
    return sqrt(total);
  }
  task.run(losses);
  return task.norms(losses.dtype());
}

}  // namespace plateau
