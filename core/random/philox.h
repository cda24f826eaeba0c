#pragma once
// Philox4x32-10 (Salmon et al. 2011) and the transforms from its 32-bit words to numbers, as inline
// functions that compile for the host and, under nvcc, for the device too. The CPU draws
// (core/ops/random.cpp) and the CUDA draws (backend/cuda/random.cu) call these same functions, so
// both devices turn the same counter block into the same number. No CUDA header is needed here.
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define PLATEAU_HOST_DEVICE __host__ __device__
#else
#define PLATEAU_HOST_DEVICE
#endif

namespace plateau {

// The four 32-bit words of one Philox block.
struct PhiloxWords {
  uint32_t w[4];
};

// Philox4x32-10 itself: counter (c0..c3) under key (k0, k1).
PLATEAU_HOST_DEVICE inline PhiloxWords philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                                     uint32_t k1) {
  constexpr uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt 3)
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(m0) * c0;
    uint64_t p1 = static_cast<uint64_t>(m1) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += w0;
    k1 += w1;
  }
  return {{c0, c1, c2, c3}};
}

// Block `counter` of the (seed, stream) stream. Counter words: the block index (low 64 bits), the
// stream (high 64 bits); key: the seed.
PLATEAU_HOST_DEVICE inline PhiloxWords philox_block(uint64_t seed, uint64_t stream, uint64_t counter) {
  return philox4x32_10(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                       static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32), static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32));
}

// Uniform floats from raw words: 24 (f32) or 53 (f64) bits, in [0, 1). Both are exact (no rounding).
PLATEAU_HOST_DEVICE inline float uniform_f32(uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }
PLATEAU_HOST_DEVICE inline double uniform_f64(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((static_cast<uint64_t>(hi) << 32 | lo) >> 11)) * (1.0 / 9007199254740992.0);
}

// The element transforms of the draws (core/ops/random.cpp), from one block's words.

// uniform: low + (high − low)·u, u from 24 bits of w0 (f32) or 53 bits of w0, w1 (f64).
PLATEAU_HOST_DEVICE inline double philox_uniform(uint32_t w0, uint32_t w1, bool f32, double low, double high) {
  double u = f32 ? static_cast<double>(uniform_f32(w0)) : uniform_f64(w0, w1);
  // One explicit fused multiply-add: what g++ makes of `low + (high − low)·u` with FMA hardware and
  // what nvcc makes of it on the device, now also on a host built without FMA (-Dnative=false).
  return std::fma(high - low, u, low);
}

// normal: Box–Muller, mean + stddev·sqrt(−2 ln(1 − u1))·cos(2π u2), u1 from w0, w1 and u2 from w2, w3.
PLATEAU_HOST_DEVICE inline double philox_normal(const PhiloxWords& b, double mean, double stddev) {
  constexpr double two_pi = 2.0 * 3.141592653589793238462643383279502884;
  double u1 = uniform_f64(b.w[0], b.w[1]), u2 = uniform_f64(b.w[2], b.w[3]);
  return mean + stddev * std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(two_pi * u2);
}

// bernoulli: 1 where u < p, u from 53 bits of w0, w1.
PLATEAU_HOST_DEVICE inline double philox_bernoulli(uint32_t w0, uint32_t w1, double p) {
  return uniform_f64(w0, w1) < p ? 1.0 : 0.0;
}

// randint: low + (the 64 bits w0·2³² + w1, mod range).
PLATEAU_HOST_DEVICE inline int64_t philox_randint(uint32_t w0, uint32_t w1, int64_t low, uint64_t range) {
  return low + static_cast<int64_t>((static_cast<uint64_t>(w0) << 32 | w1) % range);
}

}  // namespace plateau
