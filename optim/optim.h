#pragma once
// optim: optimizers, schedules, gradient clipping, weight averaging, and the perturb-evaluate-restore
// mechanism with SAM on top.
#include "optim/adam.h"
#include "optim/averaging.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "optim/perturbation.h"
#include "optim/sam.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "optim/sharpness/asam.h"
#include "optim/sharpness/delta_sam.h"
#include "optim/sharpness/fisher_sam.h"
#include "optim/sharpness/hero.h"
#include "optim/sharpness/landscape.h"
#include "optim/sharpness/variants.h"
