#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A generator is a (seed, stream)
// key plus a counter: drawing n numbers consumes ceil(n/4) counter blocks, so a stream can be
// replayed, split or skipped exactly, on any device and any thread count.
#include <array>
#include <cstdint>

#include "core/random/philox.h"  // Philox itself and uniform_f32 / uniform_f64, shared with the device

namespace plateau {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }  // counter blocks consumed so far
  void set_offset(uint64_t offset) { offset_ = offset; }
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }

  // Reserves `blocks` consecutive counter blocks and returns the first one's index.
  uint64_t advance(uint64_t blocks) {
    uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

  // The four 32-bit words of block `counter` of this generator's stream.
  std::array<uint32_t, 4> block(uint64_t counter) const;

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t offset_ = 0;
};

// Philox4x32-10 itself: counter (c0..c3) under key (k0, k1).
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// The default generator used when an op is given none; manual_seed resets it.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace plateau
