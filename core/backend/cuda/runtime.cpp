// The CUDA runtime: device discovery, the caching allocator, transfers and the numerics switches.
// Compiled in every build; without PLATEAU_CUDA every device use throws the "unavailable" error.
#include "core/backend/cuda/runtime.h"

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#if PLATEAU_CUDA
#include "core/backend/cuda/context.h"
#endif

namespace plateau::cuda {

namespace {
std::atomic<bool> tf32_allowed{false};
std::atomic<bool> deterministic_on{true};
}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed = allow; }
bool allow_tf32() { return tf32_allowed; }
void set_deterministic(bool on) { deterministic_on = on; }
bool deterministic() { return deterministic_on; }

#if !PLATEAU_CUDA

bool is_available() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() {
  return "this build has no CUDA backend (configure with -Dcuda=enabled on a machine with the CUDA toolkit)";
}
[[noreturn]] static void unavailable(const char* what, int device) {
  throw std::runtime_error(std::string("plateau: ") + what + " on cuda:" + std::to_string(device) +
                           ": no CUDA device is available (" + unavailable_reason() + ")");
}
MemoryStats memory_stats(int) { return {}; }
void reset_peak_memory_stats(int) {}
void empty_cache() {}
void synchronize(int device) { unavailable("synchronize", device); }
void* allocate(size_t, int device) { unavailable("allocating device memory", device); }
void release(void*, size_t, int) {}
void copy_bytes(void*, bool, const void*, bool, size_t, int device) {
  unavailable("copying to or from a device", device);
}

#else

namespace {

// The device count, probed once. Without a GPU (or a driver) cudaGetDeviceCount fails with
// cudaErrorInsufficientDriver or cudaErrorNoDevice; that is the "unavailable" state, not a crash.
struct Probe {
  int count = 0;
  std::string reason;
};
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    cudaError_t status = cudaGetDeviceCount(&r.count);
    if (status != cudaSuccess) {
      r.count = 0;
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
      cudaGetLastError();  // clear the sticky error
    } else if (r.count == 0) {
      r.reason = "the driver reports no CUDA device";
    }
    return r;
  }();
  return p;
}

void require_device(int device, const char* what) {
  const Probe& p = probe();
  if (p.count == 0)
    throw std::runtime_error(std::string("plateau: ") + what + " on cuda:" + std::to_string(device) +
                             ": no CUDA device is available (" + p.reason +
                             "); keep tensors on Device::cpu() or run on a machine with a GPU");
  if (device < 0 || device >= p.count)
    throw std::invalid_argument(std::string("plateau: ") + what + ": cuda:" + std::to_string(device) +
                                " does not exist (" + std::to_string(p.count) + " device(s) visible)");
}

// Caching allocator of one device. Requests are rounded to size classes (512 B steps below 1 MiB,
// then 2 MiB steps), freed blocks are kept per class and handed out again. Blocks are used in the
// order of the device's single stream, so a block freed by the host may be reused at once: work that
// still reads it was queued before the work of its next owner.
class DeviceAllocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}

  void* allocate(size_t bytes) {
    size_t size = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* p = nullptr;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      ++stats_.cache_hits;
    } else {
      set_device(device_);
      cudaError_t status = cudaMalloc(&p, size);
      if (status == cudaErrorMemoryAllocation) {  // give the cache back and try once more
        cudaGetLastError();
        release_cached_locked();
        status = cudaMalloc(&p, size);
      }
      if (status != cudaSuccess) {
        cudaGetLastError();
        throw std::runtime_error(
            "plateau: allocating " + std::to_string(bytes) + " bytes on cuda:" + std::to_string(device_) +
            ": cudaMalloc failed: " + cudaGetErrorString(status) + " (" + std::to_string(stats_.allocated) +
            " bytes held by tensors, " + std::to_string(stats_.reserved) + " reserved)");
      }
      stats_.reserved += static_cast<int64_t>(size);
      ++stats_.allocations;
    }
    stats_.allocated += static_cast<int64_t>(size);
    if (stats_.allocated > stats_.peak) stats_.peak = stats_.allocated;
    return p;
  }

  void release(void* p, size_t bytes) {
    if (!p) return;
    size_t size = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocated -= static_cast<int64_t>(size);
    free_[size].push_back(p);
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }
  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak = stats_.allocated;
  }

  static size_t size_class(size_t bytes) {
    constexpr size_t small = 512, large = size_t(2) << 20, boundary = size_t(1) << 20;
    if (bytes == 0) bytes = 1;
    return bytes < boundary ? (bytes + small - 1) / small * small : (bytes + large - 1) / large * large;
  }

 private:
  void release_cached_locked() {
    set_device(device_);
    // Blocks in the cache may still be read by queued work: wait for it before freeing.
    cudaStreamSynchronize(stream(device_));
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) cudaFree(p);
      stats_.reserved -= static_cast<int64_t>(size * blocks.size());
      blocks.clear();
    }
  }

  int device_;
  std::mutex mutex_;
  std::map<size_t, std::vector<void*> > free_;
  MemoryStats stats_;
};

DeviceAllocator& allocator(int device) { return per_device<DeviceAllocator>(device); }

// Pinned host buffer for transfers of one device, grown on demand, used under its mutex.
struct PinnedStaging {
  explicit PinnedStaging(int) {}
  std::mutex mutex;
  void* data = nullptr;
  size_t size = 0;
};
PinnedStaging& staging(int device) { return per_device<PinnedStaging>(device); }

}  // namespace

bool is_available() { return probe().count > 0; }
int device_count() { return probe().count; }
std::string unavailable_reason() { return probe().reason; }

MemoryStats memory_stats(int device) {
  if (device < 0 || device >= probe().count) return {};
  return allocator(device).stats();
}
void reset_peak_memory_stats(int device) {
  if (device >= 0 && device < probe().count) allocator(device).reset_peak();
}
void empty_cache() {
  for (int d = 0; d < probe().count; ++d) allocator(d).empty_cache();
}
void synchronize(int device) {
  require_device(device, "synchronize");
  set_device(device);
  PLATEAU_CUDA_CHECK(cudaStreamSynchronize(stream(device)), "synchronize");
}

void* allocate(size_t bytes, int device) {
  require_device(device, "allocating device memory");
  return allocator(device).allocate(bytes);
}
void release(void* p, size_t bytes, int device) {
  if (p) allocator(device).release(p, bytes);
}

void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes, int device) {
  if (bytes == 0) return;
  require_device(device, "copying to or from a device");
  set_device(device);
  cudaStream_t s = stream(device);
  const char* what = "tensor transfer";
  if (dst_on_device && src_on_device) {
    PLATEAU_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), what);
    return;  // stream-ordered like any kernel
  }
  // Host memory of tensors is pageable: copy through a pinned buffer in chunks, so the DMA engine
  // runs at full speed and the host side may be reused as soon as this returns.
  PinnedStaging& st = staging(device);
  std::lock_guard<std::mutex> lock(st.mutex);
  constexpr size_t chunk_max = size_t(32) << 20;
  size_t chunk = std::min(bytes, chunk_max);
  if (st.size < chunk) {
    if (st.data) cudaFreeHost(st.data);
    st.data = nullptr;
    st.size = 0;
    PLATEAU_CUDA_CHECK(cudaMallocHost(&st.data, chunk), what);
    st.size = chunk;
  }
  for (size_t done = 0; done < bytes; done += chunk) {
    size_t n = std::min(chunk, bytes - done);
    if (dst_on_device) {
      std::memcpy(st.data, static_cast<const char*>(src) + done, n);
      PLATEAU_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + done, st.data, n, cudaMemcpyHostToDevice, s), what);
      PLATEAU_CUDA_CHECK(cudaStreamSynchronize(s), what);
    } else {
      PLATEAU_CUDA_CHECK(cudaMemcpyAsync(st.data, static_cast<const char*>(src) + done, n, cudaMemcpyDeviceToHost, s),
                         what);
      PLATEAU_CUDA_CHECK(cudaStreamSynchronize(s), what);
      std::memcpy(static_cast<char*>(dst) + done, st.data, n);
    }
  }
}

#endif

}  // namespace plateau::cuda
