#pragma once
// nn: modules, layers, initialisation and models.
#include "nn/init.h"
#include "nn/layers/activation.h"
#include "nn/layers/conv.h"
#include "nn/layers/linear.h"
#include "nn/layers/norm.h"
#include "nn/layers/sequential.h"
#include "nn/layers/transformer.h"
#include "nn/models/models.h"
#include "nn/module.h"
