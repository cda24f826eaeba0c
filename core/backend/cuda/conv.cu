// Convolutions on the device through cuDNN's convolution API (which also runs f64): forward,
// backward data (input gradient) and backward filter (weight gradient), NCHW with groups, stride,
// padding and dilation. Per-example weight gradients are one grouped backward-filter call: the
// images of a batch stacked along the channels, one group per (image, group) pair.
#include <algorithm>
#include <array>
#include <climits>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/backend/cuda/runtime.h"
#include "core/backend/kernels.h"
#include "core/ops/factory.h"

namespace plateau::cuda {

namespace {

using kernels::ConvGeometry;

// The most scratch memory one algorithm may ask for; larger requests fall to the next algorithm.
constexpr size_t workspace_limit = size_t{1} << 30;
// The per-example gradients held at once while their squared norms are taken.
constexpr size_t sq_norm_chunk_bytes = size_t{256} << 20;

enum class Pass : int { forward, input_grad, weight_grad };

const char* pass_name(Pass pass) {
  switch (pass) {
    case Pass::forward: return "conv2d";
    case Pass::input_grad: return "conv2d_input_grad";
    case Pass::weight_grad: return "conv2d_weight_grad";
  }
  return "conv2d";
}

// "[a, b, ...]"; built by appending (gcc 12 warns, wrongly, about "literal" + std::to_string(...)).
std::string list(std::initializer_list<int64_t> values, const char* open = "[", const char* close = "]") {
  std::string s = open;
  for (int64_t v : values) {
    if (s.size() > 1) s += ", ";
    s += std::to_string(v);
  }
  s += close;
  return s;
}

std::string describe(const ConvGeometry& g) {
  std::string s = "input ";
  s += list({g.batch, g.channels, g.height, g.width});
  s += ", weight ";
  s += list({g.out_channels, g.groups ? g.channels / g.groups : 0, g.kernel_h, g.kernel_w});
  s += ", stride ";
  s += list({g.stride_h, g.stride_w}, "(", ")");
  s += ", padding ";
  s += list({g.pad_h, g.pad_w}, "(", ")");
  s += ", dilation ";
  s += list({g.dilation_h, g.dilation_w}, "(", ")");
  s += ", groups ";
  s += std::to_string(g.groups);
  return s;
}

int to_int(int64_t v, const char* op, const ConvGeometry& g) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("plateau: ") + op + ": a size of " + std::to_string(v) +
                                " is beyond cuDNN's 32-bit range for " + describe(g) +
                                "; use a smaller batch or image");
  return static_cast<int>(v);
}

cudnnDataType_t data_type(DType dtype, const char* op) {
  if (dtype == DType::f32) return CUDNN_DATA_FLOAT;
  if (dtype == DType::f64) return CUDNN_DATA_DOUBLE;
  throw std::invalid_argument(std::string("plateau: ") + op + " needs a floating tensor, got " + dtype_name(dtype));
}

// The first byte of t's elements (its offset applied).
char* bytes_of(const Tensor& t) { return static_cast<char*>(t.raw_data()); }

// cuDNN reads packed NCHW here: strided operands are copied first.
using kernels::dense;

// Outputs are written as packed arrays: a strided one would be silently scrambled.
void require_contiguous(const Tensor& out, const char* op) {
  if (!out.is_contiguous())
    throw std::logic_error(std::string("plateau: ") + op + ": the output must be contiguous (a bug in the caller)");
}

void zero_fill(const Tensor& out, int dev, const char* op) {
  PLATEAU_CUDA_CHECK(cudaMemsetAsync(bytes_of(out), 0, out.numel() * element_size(out.dtype()), stream(dev)), op);
}

// ---- descriptors, destroyed on every path ----

using TensorDesc = TensorDescriptor;
using FilterDesc = FilterDescriptor;
using ConvDesc = ConvolutionDescriptor;

// The descriptors of one convolution: x [N, C, H, W], w [O, C/groups, kH, kW], y [N, O, OH, OW],
// all packed NCHW, cross-correlation (what conv2d means) computed in the data's own precision.
struct Problem {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;

  Problem(const ConvGeometry& g, cudnnDataType_t type, const char* op) {
    auto i = [&](int64_t v) { return to_int(v, op, g); };
    PLATEAU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x.get(), CUDNN_TENSOR_NCHW, type, i(g.batch), i(g.channels),
                                                   i(g.height), i(g.width)),
                        op);
    PLATEAU_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.get(), CUDNN_TENSOR_NCHW, type, i(g.batch), i(g.out_channels),
                                                   i(g.out_h), i(g.out_w)),
                        op);
    PLATEAU_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), type, CUDNN_TENSOR_NCHW, i(g.out_channels),
                                                   i(g.channels / g.groups), i(g.kernel_h), i(g.kernel_w)),
                        op);
    PLATEAU_CUDNN_CHECK(
        cudnnSetConvolution2dDescriptor(conv.get(), i(g.pad_h), i(g.pad_w), i(g.stride_h), i(g.stride_w),
                                        i(g.dilation_h), i(g.dilation_w), CUDNN_CROSS_CORRELATION, type),
        op);
    PLATEAU_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.get(), i(g.groups)), op);
    // The op computed the output size; cuDNN must agree, or it would read and write out of bounds.
    int n = 0, c = 0, h = 0, wd = 0;
    PLATEAU_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.get(), x.get(), w.get(), &n, &c, &h, &wd), op);
    if (n != g.batch || c != g.out_channels || h != g.out_h || wd != g.out_w)
      throw std::logic_error(std::string("plateau: ") + op + ": cuDNN computes an output " + list({n, c, h, wd}) +
                             " but the geometry says " + list({g.batch, g.out_channels, g.out_h, g.out_w}) + " for " +
                             describe(g) + " (a bug: please report it)");
  }
};

// ---- algorithm choice ----

// An algorithm of one pass (the cudnnConvolution*Algo_t value), the math type to run it with, and
// the scratch memory it needs.
struct Algo {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// f32 without TF32 must be full f32 products: cuDNN 9 lets CUDNN_DEFAULT_MATH use TF32 on Ampere
// and later, so only CUDNN_FMA_MATH promises it. With TF32 allowed, tensor-op math. f64: default.
cudnnMathType_t base_math(DType dtype, bool tf32) {
  if (dtype == DType::f64) return CUDNN_DEFAULT_MATH;
  return tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

// Whether an algorithm the heuristics offer with math type m keeps the precision asked for.
// ALLOW_CONVERSION may round f32 operands down to f16: never.
bool math_allowed(cudnnMathType_t m, DType dtype, bool tf32) {
  if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  if (dtype == DType::f32 && !tf32) return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
  return true;
}

// The math type to run an allowed algorithm with (FMA whenever f32 must stay f32).
cudnnMathType_t run_math(cudnnMathType_t m, DType dtype, bool tf32) {
  return dtype == DType::f32 && !tf32 ? CUDNN_FMA_MATH : m;
}

// Every pass's perf struct has algo, status, determinism and mathType.
template <typename Perf>
void take_valid(const std::vector<Perf>& perf, int count, DType dtype, bool tf32, bool det, std::vector<Algo>& out) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[i];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (det && p.determinism != CUDNN_DETERMINISTIC) continue;
    if (!math_allowed(p.mathType, dtype, tf32)) continue;
    out.push_back({static_cast<int>(p.algo), run_math(p.mathType, dtype, tf32), 0});
  }
}

// Candidates in the heuristics' order (best first), then deterministic algorithms that run f32
// and f64 and need little or no workspace, in case the heuristics left them out.
std::vector<Algo> candidates(Pass pass, cudnnHandle_t h, const Problem& p, DType dtype, bool tf32, bool det) {
  const char* op = pass_name(pass);
  std::vector<Algo> out;
  std::vector<int> fallback;
  int max_count = 0, count = 0;
  switch (pass) {
    case Pass::forward: {
      PLATEAU_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count), op);
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::max(max_count, 1));
      PLATEAU_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                                 max_count, &count, perf.data()),
                          op);
      take_valid(perf, std::min(count, max_count), dtype, tf32, det, out);
      fallback = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM};
      break;
    }
    case Pass::input_grad: {
      PLATEAU_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count), op);
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(std::max(max_count, 1));
      PLATEAU_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
                                                                      max_count, &count, perf.data()),
                          op);
      take_valid(perf, std::min(count, max_count), dtype, tf32, det, out);
      fallback = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
      if (!det) fallback.push_back(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0);
      break;
    }
    case Pass::weight_grad: {
      PLATEAU_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count), op);
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(std::max(max_count, 1));
      PLATEAU_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x.get(), p.y.get(), p.conv.get(),
                                                                        p.w.get(), max_count, &count, perf.data()),
                          op);
      take_valid(perf, std::min(count, max_count), dtype, tf32, det, out);
      fallback = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
      if (!det) fallback.push_back(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);
      break;
    }
  }
  for (int algo : fallback) {
    const bool listed = std::any_of(out.begin(), out.end(), [&](const Algo& a) { return a.algo == algo; });
    if (!listed) out.push_back({algo, base_math(dtype, tf32), 0});
  }
  return out;
}

cudnnStatus_t workspace_size(Pass pass, cudnnHandle_t h, const Problem& p, int algo, size_t* bytes) {
  switch (pass) {
    case Pass::forward:
      return cudnnGetConvolutionForwardWorkspaceSize(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                     static_cast<cudnnConvolutionFwdAlgo_t>(algo), bytes);
    case Pass::input_grad:
      return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
                                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
    case Pass::weight_grad:
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x.get(), p.y.get(), p.conv.get(), p.w.get(),
                                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), bytes);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

// Device pointers of one call. forward: out (y) = conv(x, w); input_grad: out (dx) from w and dy;
// weight_grad: out (dw) from x and dy.
struct Buffers {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* dy = nullptr;
  void* out = nullptr;
};

// out = alpha·result + beta·out, alpha and beta host scalars of the compute type.
cudnnStatus_t execute(Pass pass, cudnnHandle_t h, const Problem& p, int algo, void* ws, size_t ws_bytes,
                      const Buffers& b, const void* alpha, const void* beta) {
  switch (pass) {
    case Pass::forward:
      return cudnnConvolutionForward(h, alpha, p.x.get(), b.x, p.w.get(), b.w, p.conv.get(),
                                     static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws, ws_bytes, beta, p.y.get(),
                                     b.out);
    case Pass::input_grad:
      return cudnnConvolutionBackwardData(h, alpha, p.w.get(), b.w, p.y.get(), b.dy, p.conv.get(),
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws, ws_bytes, beta,
                                          p.x.get(), b.out);
    case Pass::weight_grad:
      return cudnnConvolutionBackwardFilter(h, alpha, p.x.get(), b.x, p.y.get(), b.dy, p.conv.get(),
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), ws, ws_bytes, beta,
                                            p.w.get(), b.out);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

// The algorithm that ran for a (pass, device, dtype, TF32, deterministic, geometry) key.
using Key = std::array<int64_t, 21>;

Key key_of(Pass pass, int dev, DType dtype, bool tf32, bool det, const ConvGeometry& g) {
  // clang-format off
  return {static_cast<int64_t>(pass), dev, static_cast<int64_t>(dtype), tf32, det,
          g.batch, g.channels, g.height, g.width, g.out_channels, g.kernel_h, g.kernel_w, g.out_h, g.out_w,
          g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, g.groups};
  // clang-format on
}

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<Key, Algo>& cache() {
  static auto* c = new std::map<Key, Algo>;  // never destroyed: no teardown-order questions at exit
  return *c;
}

// One cuDNN call of `pass` on geometry g (operands dense, sizes within int): out = result, or
// out += result when `accumulate`. The first call of a key tries the candidates in order and keeps
// the first that runs; later calls run that one.
void run_pass(Pass pass, int dev, DType dtype, const ConvGeometry& g, const Buffers& b, bool accumulate) {
  const char* op = pass_name(pass);
  const Problem p(g, data_type(dtype, op), op);
  const bool tf32 = dtype == DType::f32 && allow_tf32(), det = deterministic();
  const Key key = key_of(pass, dev, dtype, tf32, det, g);
  cudnnHandle_t h = cudnn(dev);
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool f64 = dtype == DType::f64;
  const void* alpha = f64 ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* beta = accumulate ? alpha : f64 ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);

  std::optional<Algo> chosen;
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto it = cache().find(key);
    if (it != cache().end()) chosen = it->second;
  }
  if (chosen) {
    PLATEAU_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), chosen->math), op);
    Workspace ws(chosen->workspace, dev);
    PLATEAU_CUDNN_CHECK(execute(pass, h, p, chosen->algo, ws.data(), ws.size(), b, alpha, beta), op);
    return;
  }

  // The heuristics see the math type we mean to run with.
  PLATEAU_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), base_math(dtype, tf32)), op);
  std::string last_error = "the heuristics offered no algorithm";
  for (Algo a : candidates(pass, h, p, dtype, tf32, det)) {
    const std::string name = "algorithm " + std::to_string(a.algo);
    cudnnStatus_t s = cudnnSetConvolutionMathType(p.conv.get(), a.math);
    if (s == CUDNN_STATUS_SUCCESS) s = workspace_size(pass, h, p, a.algo, &a.workspace);
    if (s != CUDNN_STATUS_SUCCESS) {
      last_error = name + ": " + cudnnGetErrorString(s);
      continue;
    }
    if (a.workspace > workspace_limit) {
      last_error = name + " wants " + std::to_string(a.workspace) + " bytes of workspace";
      continue;
    }
    std::unique_ptr<Workspace> ws;
    try {
      ws = std::make_unique<Workspace>(a.workspace, dev);
    } catch (const std::runtime_error& e) {  // out of memory: an algorithm with less workspace may fit
      last_error = name + ": " + e.what();
      continue;
    }
    s = execute(pass, h, p, a.algo, ws->data(), ws->size(), b, alpha, beta);
    if (s != CUDNN_STATUS_SUCCESS) {
      cudaGetLastError();  // a failed launch inside cuDNN must not surface at our next kernel
      last_error = name + ": " + cudnnGetErrorString(s);
      continue;
    }
    std::lock_guard<std::mutex> lock(cache_mutex());
    cache()[key] = a;
    return;
  }
  throw std::runtime_error(std::string("plateau: ") + op + ": no cuDNN algorithm ran for " + describe(g) + " (" +
                           dtype_name(dtype) + (tf32 ? ", TF32" : "") + (det ? ", deterministic" : "") +
                           "); last: " + last_error + (det ? ". set_deterministic(false) allows more algorithms" : ""));
}

// Images per cuDNN call: cuDNN indexes a tensor with 32-bit ints, so each call's input and output
// hold at most INT_MAX elements.
int64_t images_per_call(const ConvGeometry& g, const char* op) {
  const int64_t per_image =
      std::max<int64_t>({g.channels * g.height * g.width, g.out_channels * g.out_h * g.out_w, int64_t{1}});
  if (per_image > INT_MAX)
    throw std::invalid_argument(std::string("plateau: ") + op + ": one image of " + describe(g) +
                                " has more than 2^31 - 1 elements, beyond what cuDNN indexes");
  return std::max<int64_t>(1, INT_MAX / per_image);
}

int64_t input_image(const ConvGeometry& g) { return g.channels * g.height * g.width; }
int64_t output_image(const ConvGeometry& g) { return g.out_channels * g.out_h * g.out_w; }
int64_t weight_size(const ConvGeometry& g) {
  return g.out_channels * (g.channels / g.groups) * g.kernel_h * g.kernel_w;
}

// `images` images seen as one: batch 1 with their channels stacked, and one group per (image,
// group). Group n·G + k then reads image n's channels of group k and writes the filters
// n·O + k·og ... of a [images·O, C/G, kH, kW] weight gradient: each image's own gradient, stored
// [images, O, C/G, kH, kW].
ConvGeometry stacked(const ConvGeometry& g, int64_t images) {
  ConvGeometry s = g;
  s.batch = 1;
  s.channels = images * g.channels;
  s.out_channels = images * g.out_channels;
  s.groups = images * g.groups;
  return s;
}

// out [images, O, C/G, kH, kW] (dense) = the weight gradients of images [n0, n0 + images) of x and
// grad_out (both dense).
void per_example_weight_grads(const Tensor& x, const Tensor& grad_out, const ConvGeometry& g, int64_t n0,
                              int64_t images, char* out, int dev) {
  const char* op = "conv2d per-example weight gradient";
  const size_t elem = element_size(x.dtype());
  // Images per stacked call: the stacked input, output and weight gradient each within int.
  const int64_t per_image = std::max<int64_t>({input_image(g), output_image(g), weight_size(g), int64_t{1}});
  if (per_image > INT_MAX)
    throw std::invalid_argument(std::string("plateau: ") + op + ": one image of " + describe(g) +
                                " has more than 2^31 - 1 elements, beyond what cuDNN indexes");
  const int64_t step = std::max<int64_t>(1, INT_MAX / per_image);
  for (int64_t first = n0; first < n0 + images; first += step) {
    const int64_t count = std::min(step, n0 + images - first);
    Buffers b;
    b.x = bytes_of(x) + first * input_image(g) * elem;
    b.dy = bytes_of(grad_out) + first * output_image(g) * elem;
    b.out = out + (first - n0) * weight_size(g) * elem;
    try {
      run_pass(Pass::weight_grad, dev, x.dtype(), stacked(g, count), b, false);
    } catch (const std::runtime_error&) {
      // No algorithm took the stacked grouping: one ordinary batch-1 call per image instead.
      ConvGeometry one = g;
      one.batch = 1;
      for (int64_t n = 0; n < count; ++n) {
        Buffers bn;
        bn.x = static_cast<const char*>(b.x) + n * input_image(g) * elem;
        bn.dy = static_cast<const char*>(b.dy) + n * output_image(g) * elem;
        bn.out = static_cast<char*>(b.out) + n * weight_size(g) * elem;
        run_pass(Pass::weight_grad, dev, x.dtype(), one, bn, false);
      }
    }
  }
}

// sq[i] = Σ_j grads[i, j]², one block per image, summed in double in a fixed order (deterministic).
template <typename T>
__global__ void sum_squares_kernel(const T* grads, int64_t per_image, int64_t images, T* sq) {
  __shared__ double partial[block_threads];
  for (int64_t img = blockIdx.x; img < images; img += gridDim.x) {
    const T* row = grads + img * per_image;
    double acc = 0;
    for (int64_t i = threadIdx.x; i < per_image; i += blockDim.x) {
      const double v = row[i];
      acc += v * v;
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) sq[img] = static_cast<T>(partial[0]);
    __syncthreads();  // partial is refilled for the next image
  }
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& out, const ConvGeometry& g) {
  const char* op = "conv2d";
  const int dev = out.device().index;
  set_device(dev);
  data_type(x.dtype(), op);
  if (out.numel() == 0) return;
  require_contiguous(out, op);
  if (x.numel() == 0 || weight.numel() == 0) return zero_fill(out, dev, op);  // an empty sum
  const Tensor xd = dense(x), wd = dense(weight);
  const size_t elem = element_size(x.dtype());
  const int64_t step = images_per_call(g, op);
  for (int64_t n0 = 0; n0 < g.batch; n0 += step) {
    ConvGeometry part = g;
    part.batch = std::min(step, g.batch - n0);
    Buffers b;
    b.x = bytes_of(xd) + n0 * input_image(g) * elem;
    b.w = bytes_of(wd);
    b.out = bytes_of(out) + n0 * output_image(g) * elem;
    run_pass(Pass::forward, dev, x.dtype(), part, b, false);
  }
}

void conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_x, const ConvGeometry& g) {
  const char* op = "conv2d_input_grad";
  const int dev = grad_x.device().index;
  set_device(dev);
  data_type(grad_out.dtype(), op);
  if (grad_x.numel() == 0) return;
  require_contiguous(grad_x, op);
  if (grad_out.numel() == 0 || weight.numel() == 0) return zero_fill(grad_x, dev, op);
  const Tensor gd = dense(grad_out), wd = dense(weight);
  const size_t elem = element_size(grad_out.dtype());
  const int64_t step = images_per_call(g, op);
  for (int64_t n0 = 0; n0 < g.batch; n0 += step) {
    ConvGeometry part = g;
    part.batch = std::min(step, g.batch - n0);
    Buffers b;
    b.w = bytes_of(wd);
    b.dy = bytes_of(gd) + n0 * output_image(g) * elem;
    b.out = bytes_of(grad_x) + n0 * input_image(g) * elem;
    run_pass(Pass::input_grad, dev, grad_out.dtype(), part, b, false);
  }
}

void conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w, const ConvGeometry& g) {
  const char* op = "conv2d_weight_grad";
  const int dev = grad_w.device().index;
  set_device(dev);
  data_type(x.dtype(), op);
  if (grad_w.numel() == 0) return;
  require_contiguous(grad_w, op);
  if (x.numel() == 0 || grad_out.numel() == 0) return zero_fill(grad_w, dev, op);
  const Tensor xd = dense(x), gd = dense(grad_out);
  const size_t elem = element_size(x.dtype());
  const int64_t step = images_per_call(g, op);
  // Batches too large for one call: later slices add onto the first one's gradient.
  for (int64_t n0 = 0; n0 < g.batch; n0 += step) {
    ConvGeometry part = g;
    part.batch = std::min(step, g.batch - n0);
    Buffers b;
    b.x = bytes_of(xd) + n0 * input_image(g) * elem;
    b.dy = bytes_of(gd) + n0 * output_image(g) * elem;
    b.out = bytes_of(grad_w);
    run_pass(Pass::weight_grad, dev, x.dtype(), part, b, n0 > 0);
  }
}

void conv2d_weight_grad_per_example(const Tensor& x, const Tensor& grad_out, const Tensor& grad_w,
                                    const ConvGeometry& g) {
  const char* op = "conv2d per-example weight gradient";
  const int dev = grad_w.device().index;
  set_device(dev);
  data_type(x.dtype(), op);
  if (grad_w.numel() == 0) return;
  require_contiguous(grad_w, op);
  if (x.numel() == 0 || grad_out.numel() == 0) return zero_fill(grad_w, dev, op);
  const Tensor xd = dense(x), gd = dense(grad_out);
  per_example_weight_grads(xd, gd, g, 0, g.batch, bytes_of(grad_w), dev);
}

void conv2d_weight_grad_sq_norms(const Tensor& x, const Tensor& grad_out, const Tensor& sq, const ConvGeometry& g) {
  const char* op = "conv2d per-example weight gradient norms";
  const int dev = sq.device().index;
  set_device(dev);
  data_type(x.dtype(), op);
  if (sq.numel() == 0) return;
  require_contiguous(sq, op);
  const int64_t per_image = weight_size(g);
  if (per_image == 0 || x.numel() == 0 || grad_out.numel() == 0) return zero_fill(sq, dev, op);
  const Tensor xd = dense(x), gd = dense(grad_out);
  const size_t elem = element_size(x.dtype());
  // Chunks of images whose gradients fit the scratch budget (at least one image).
  const int64_t chunk = std::clamp<int64_t>(static_cast<int64_t>(sq_norm_chunk_bytes / (per_image * elem)), 1, g.batch);
  Workspace grads(static_cast<size_t>(chunk * per_image) * elem, dev);
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t images = std::min(chunk, g.batch - n0);
    per_example_weight_grads(xd, gd, g, n0, images, static_cast<char*>(grads.data()), dev);
    const unsigned int blocks = static_cast<unsigned int>(std::min<int64_t>(images, 65535));
    if (x.dtype() == DType::f64)
      sum_squares_kernel<double><<<blocks, block_threads, 0, stream(dev)>>>(static_cast<const double*>(grads.data()),
                                                                            per_image, images, ptr<double>(sq) + n0);
    else
      sum_squares_kernel<float><<<blocks, block_threads, 0, stream(dev)>>>(static_cast<const float*>(grads.data()),
                                                                           per_image, images, ptr<float>(sq) + n0);
    PLATEAU_LAUNCH_CHECK("conv2d per-example weight gradient norms: sum_squares_kernel");
  }
}

}  // namespace plateau::cuda
