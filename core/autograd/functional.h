#pragma once
// Functional transforms over the tape (the first part of the derivative toolkit, issue 3):
// vector-Jacobian and Jacobian-vector products, Hessian-vector products, and small dense
// Jacobians and Hessians for tests. f maps a list of tensors to a list of tensors; the transforms
// differentiate with respect to every floating input, on fresh leaves holding the inputs' values,
// so f may be given tensors that do not require grad (data) or that do (parameters).
#include <functional>

#include "core/tensor.h"

namespace plateau {

using TensorFunction = std::function<TensorList(const TensorList&)>;
using ScalarFunction = std::function<Tensor(const TensorList&)>;

struct FunctionalResult {
  TensorList outputs;      // f(inputs)
  TensorList derivatives;  // one per input (vjp, hvp) or per output (jvp)
};

// Σ_j cotangents[j] · ∂f_j/∂inputs: one per input (zeros where f does not depend on it).
FunctionalResult vjp(const TensorFunction& f, const TensorList& inputs, const TensorList& cotangents,
                     bool create_graph = false);
// Σ_i ∂f/∂inputs_i · tangents[i]: one per output, by the double-VJP trick: u ↦ vjp(f, x, u) is linear
// in u, and its VJP with cotangent v is J·v. No forward-mode rules are needed.
FunctionalResult jvp(const TensorFunction& f, const TensorList& inputs, const TensorList& tangents,
                     bool create_graph = false);
// H·v of a scalar f at inputs, by double backward: ∇(∇f · v). One per input.
FunctionalResult hvp(const ScalarFunction& f, const TensorList& inputs, const TensorList& v, bool create_graph = false);
// Dense Jacobian of a one-input, one-output f: shape output.shape + input.shape (one VJP per output element).
Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& input);
// Dense Hessian of a scalar f of one input: shape input.shape + input.shape.
Tensor hessian(const std::function<Tensor(const Tensor&)>& f, const Tensor& input);

}  // namespace plateau
