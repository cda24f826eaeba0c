#pragma once
// Every public op. Each op is defined once (core/ops/*.cpp): forward, backward rule written with
// these same ops, and its entry in the op registry with a test domain.
#include "core/ops/custom_grad.h"
#include "core/ops/elementwise.h"
#include "core/ops/factory.h"
#include "core/ops/linalg.h"
#include "core/ops/neural.h"
#include "core/ops/random.h"
#include "core/ops/reduction.h"
#include "core/ops/shape_ops.h"
