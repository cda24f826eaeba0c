#include "core/random/generator.h"

namespace plateau {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  PhiloxWords r = philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
  return {r.w[0], r.w[1], r.w[2], r.w[3]};
}

std::array<uint32_t, 4> Generator::block(uint64_t counter) const {
  PhiloxWords r = philox_block(seed_, stream_, counter);
  return {r.w[0], r.w[1], r.w[2], r.w[3]};
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace plateau
