#pragma once
// Reverse mode: grad() and backward(), plus tape inspection. See docs/engine.md for a walkthrough.
#include <optional>
#include <string>

#include "core/autograd/grad_mode.h"
#include "core/autograd/node.h"
#include "core/tensor.h"

namespace plateau {

struct GradOptions {
  TensorList grad_outputs;           // one per output; may be empty for scalar outputs
  std::optional<bool> retain_graph;  // defaults to create_graph
  bool create_graph = false;         // record the backward pass, for gradients of gradients
  bool allow_unused = false;         // an input the outputs do not depend on gets an undefined tensor
};

// Gradients of sum(outputs[i] * grad_outputs[i]) with respect to each input, which may be a leaf
// or an interior tensor. Leaves' .grad() is left untouched. Outputs moved in are let go of once their
// graph is found: a Hessian-vector product need not hold the gradient g while it differentiates g·v.
TensorList grad(TensorList outputs, const TensorList& inputs, const GradOptions& options = {});

// Accumulates gradients into .grad() of every leaf the outputs depend on.
void backward(const TensorList& outputs, const TensorList& grad_outputs = {}, bool retain_graph = false,
              bool create_graph = false);

// The tape behind the outputs, one node per line in execution order of backward
// ("#12 mul  in: [3, 4] f64, [4] f64  -> out: [3, 4] f64"), and the same graph as Graphviz DOT.
std::string tape_text(const TensorList& outputs);
std::string tape_dot(const TensorList& outputs);

}  // namespace plateau
