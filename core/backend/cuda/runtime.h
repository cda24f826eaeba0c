#pragma once
// The CUDA runtime as a user sees it: is a device there, how much memory do tensors hold, numerics
// switches. Safe to call in every build: without CUDA support or without a device, is_available()
// is false and the first tensor placed on a CUDA device throws an error saying so.
#include <cstdint>
#include <string>

namespace plateau::cuda {

bool is_available();  // built with CUDA and at least one device answers
int device_count();   // 0 when unavailable
// Why CUDA is unavailable ("built without CUDA", "no CUDA device: <driver error>"), empty when it is.
std::string unavailable_reason();

// The caching allocator of one device: bytes held by live tensors, bytes reserved from the driver
// (live + cached), and the most held at once since reset_peak_memory_stats.
struct MemoryStats {
  int64_t allocated = 0;
  int64_t reserved = 0;
  int64_t peak = 0;
  int64_t allocations = 0;  // driver allocations (cudaMalloc calls) so far
  int64_t cache_hits = 0;   // requests served from the cache
};
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
void empty_cache();                // returns every cached block to the driver
void synchronize(int device = 0);  // waits for the device's stream

// TF32 tensor cores for f32 matmul and convolution: off by default (full f32 products, as the CPU).
void set_allow_tf32(bool allow);
bool allow_tf32();
// Deterministic mode: reductions, scatter_add/index_add and cuDNN algorithms that give the same
// bits on every run. On by default; off lets atomics and faster cuDNN algorithms be used.
void set_deterministic(bool on);
bool deterministic();

// Internal to core: device memory and transfers (throw the unavailable error when there is no device).
void* allocate(size_t bytes, int device);
void release(void* p, size_t bytes, int device);
// Copies bytes between host and device or within a device; host sides are pageable memory, staged
// through pinned buffers. Returns once the data is in place.
void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes, int device);

}  // namespace plateau::cuda
