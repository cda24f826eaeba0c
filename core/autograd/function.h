#pragma once
// How an op records itself on the tape (internal to core/ops). Usage, inside an op:
//
//   Tensor y = <forward kernel>;
//   if (autograd::should_record({&x}))
//     autograd::record("exp", {x}, {&y}, {y}, [](autograd::BackwardContext& c) -> TensorList {
//       return {c.grad() * c.saved(0)};  // d exp(x) = exp(x) dx
//     });
#include <initializer_list>

#include "core/autograd/grad_mode.h"
#include "core/autograd/node.h"

namespace plateau::autograd {

// True when grad mode is on and some input requires grad.
inline bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}
bool should_record(const TensorList& inputs);

// Records one node: inputs in order (undefined or non-differentiable ones get no edge), outputs
// (which become its results: requires_grad set, grad_fn pointing here), tensors to save (inputs
// or outputs, unpacked by BackwardContext::saved in this order) and the backward rule. Returns the
// node, so the op can declare how it treats the example dimension: record(...).examples(...).
FunctionNode& record(const char* name, const TensorList& inputs, std::initializer_list<Tensor*> outputs,
                     const TensorList& saved, BackwardFn backward);
FunctionNode& record(const char* name, const TensorList& inputs, const std::vector<Tensor*>& outputs,
                     const TensorList& saved, BackwardFn backward);

}  // namespace plateau::autograd
