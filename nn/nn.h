#pragma once
// nn: modules, layers, initialisation and models.
#include "nn/module.h"
