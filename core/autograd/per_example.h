#pragma once
// Per-example gradients and their norms (the derivative toolkit, issue 3; docs/engine.md).
//
// Dimension 0 of the model's input is the example dimension. `losses` has one entry per example,
// each depending only on its own example: every op between the parameters and the losses must keep
// the rows of dimension 0 apart (each recorded op declares whether it does, autograd::ExampleMap).
// One backward pass from `losses` then carries each example's gradient separately in row b of every
// activation gradient; where a parameter meets the batch (linear, conv2d, matmul, embedding, a
// broadcast bias or norm scale) a per-example rule forms each example's own parameter gradient
// instead of the sum over examples.
//
// Ops that mix examples (batch norm in training mode, a reduction or a slice along dimension 0, a
// matmul contracting it) and ops without a per-example rule are refused with an error naming the
// op; the result is never silently wrong. The results are plain tensors (nothing is recorded).
#include "core/tensor.h"

namespace plateau {

// For each parameter, [B, *param.shape]: row b is the gradient of losses[b]. A parameter used
// several times gets the sum of its uses per example; an unused one gets zeros. Parameters are
// leaves that require grad; losses is [B].
TensorList per_example_grads(const Tensor& losses, const TensorList& params);

// [B]: the L2 norm of each example's gradient over all of params, as if the per-example gradients
// were concatenated, without forming them where a cheaper form exists: ‖x_b‖·‖g_b‖ for a linear layer
// on one row per example, the Gram form Σ_st (x_s·x_t)(g_s·g_t) for sequences and convolutions
// when it is cheaper than the gradient itself.
Tensor per_example_grad_norms(const Tensor& losses, const TensorList& params);

namespace autograd {

// Helpers for per-example rules. `full` has the example dim first and an operand's broadcast shape
// after it; returns [B, *shape], summing the dims along which the operand was broadcast.
Tensor sum_to_example_shape(const Tensor& full, const Shape& shape);
// [B]: Σ over every dim but the first of x².
Tensor squared_norms(const Tensor& per_example);

}  // namespace autograd
}  // namespace plateau
