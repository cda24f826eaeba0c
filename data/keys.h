#pragma once
// The random keys of the data pipeline. Every draw comes from a Philox generator whose key is the
// user's seed and whose stream is derived from what the draw is for, so a draw depends on (seed,
// purpose, epoch, index) alone: not on the order of earlier draws, threads or prefetching.
#include <cstdint>

#include "core/random/generator.h"

namespace plateau::data {

enum class KeyDomain : uint64_t { shuffle = 1, example = 2, split = 3, label_noise = 4 };

// A 64-bit stream number for (domain, a, b): splitmix64 finalizers chained over the three words.
uint64_t stream_key(KeyDomain domain, uint64_t a = 0, uint64_t b = 0);

// The order of epoch `epoch`.
inline Generator shuffle_generator(uint64_t seed, int64_t epoch) {
  return Generator(seed, stream_key(KeyDomain::shuffle, static_cast<uint64_t>(epoch)));
}
// The transforms of dataset example `index` in epoch `epoch`.
inline Generator example_generator(uint64_t seed, int64_t epoch, int64_t index) {
  return Generator(seed, stream_key(KeyDomain::example, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
}

// One uniform draw in [0, 1) (53 bits) and one integer uniform in [0, n), each taking one counter
// block of the generator (the modulo bias is below 2^-40 for n < 2^24).
double draw_uniform(Generator& gen);
int64_t draw_below(Generator& gen, int64_t n);

}  // namespace plateau::data
