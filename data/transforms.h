#pragma once
// Per-example transforms. A transform maps one example's input (f32 [C, H, W] for the image
// transforms) to a new tensor, drawing any randomness from the generator it is given; the loader
// hands it example_generator(seed, epoch, index) (data/keys.h), so an example's augmentation in an
// epoch is fixed by those three numbers. Transforms run on the loader's prefetch thread: a custom one
// must only read shared state.
#include <functional>
#include <vector>

#include "core/random/generator.h"
#include "core/tensor.h"

namespace plateau::data {

using Transform = std::function<Tensor(const Tensor& example, Generator& gen)>;

// (x − mean[c]) / std[c] for each channel c of dimension 0. No draws.
Transform normalize(std::vector<double> mean, std::vector<double> std);
// Zero-pads H and W by `padding` on each side, then crops an H×W window at an offset (dy, dx) drawn
// uniformly from [0, 2·padding]² (two draws: dy, then dx).
Transform random_crop(int64_t padding);
// Mirrors W with probability p (one draw).
Transform horizontal_flip(double p = 0.5);
// Cutout (DeVries & Taylor 2017): zeroes the square of side `size` centred at (cy, cx), drawn
// uniformly from [0, H) × [0, W) (two draws: cy, then cx), clipped at the borders, as in their code:
// rows [cy − size/2, cy + size/2) ∩ [0, H), columns likewise (integer division, so an odd size
// zeroes size − 1 rows). Every channel is zeroed.
Transform cutout(int64_t size);
// Applies `transforms` in order with the same generator.
Transform compose(std::vector<Transform> transforms);

}  // namespace plateau::data
