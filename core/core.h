#pragma once
// core: tensors, ops, autograd, random numbers, threads, serialization.
#include "core/autograd/autograd.h"
#include "core/autograd/check.h"
#include "core/autograd/functional.h"
#include "core/autograd/hessian.h"
#include "core/autograd/hook_point.h"
#include "core/autograd/per_example.h"
#include "core/backend/cuda/runtime.h"
#include "core/io/io.h"
#include "core/ops/ops.h"
#include "core/random/generator.h"
#include "core/tensor.h"
#include "core/threads.h"
