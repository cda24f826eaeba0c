#pragma once
// data: datasets, the loader, transforms, label noise and file formats. Depends on core only.
#include "data/dataset.h"
#include "data/formats/bytes.h"
#include "data/formats/cifar.h"
#include "data/formats/csv.h"
#include "data/formats/idx.h"
#include "data/keys.h"
#include "data/label_noise.h"
#include "data/loader.h"
#include "data/sources.h"
#include "data/transforms.h"
