#pragma once
// Everything a user's experiment needs.
#include "core/core.h"
#include "data/data.h"
#include "experiments/runner/landscape.h"
#include "experiments/runner/methods.h"
#include "experiments/runner/runner.h"
#include "experiments/runner/trainer.h"
#include "nn/nn.h"
#include "optim/optim.h"
