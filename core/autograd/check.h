#pragma once
// Finite-difference checks of the tape's derivatives (central differences, f64 inputs).
#include <string>

#include "core/autograd/registry.h"
#include "core/tensor.h"

namespace plateau {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;  // over all compared Jacobian entries
  std::string message;       // on failure: which output, input and element disagree, by how much
};

// Compares the Jacobian of fn at inputs, built one backward pass per output element, with central
// differences, for every floating input that requires grad.
GradcheckResult gradcheck(const registry::OpFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});
// gradcheck of the map (inputs, u) -> grad(fn(inputs), inputs, u, create_graph): second derivatives.
GradcheckResult gradgradcheck(const registry::OpFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});

}  // namespace plateau
