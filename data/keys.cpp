#include "data/keys.h"

namespace plateau::data {

namespace {

// splitmix64's finalizer (Steele et al. 2014): a bijection on 64-bit words that spreads every input bit.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t stream_key(KeyDomain domain, uint64_t a, uint64_t b) {
  return mix(mix(mix(static_cast<uint64_t>(domain)) ^ a) ^ b);
}

double draw_uniform(Generator& gen) {
  auto w = gen.block(gen.advance(1));
  return uniform_f64(w[0], w[1]);
}

int64_t draw_below(Generator& gen, int64_t n) {
  auto w = gen.block(gen.advance(1));
  return static_cast<int64_t>((static_cast<uint64_t>(w[0]) << 32 | w[1]) % static_cast<uint64_t>(n));
}

}  // namespace plateau::data
