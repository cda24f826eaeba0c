#pragma once
// Everything a user's experiment needs.
#include "core/core.h"
#include "nn/nn.h"
