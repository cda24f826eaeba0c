// Matrix products on the device: row-major batched GEMM through cuBLAS (column-major) and the
// per-example outer products of a linear layer.
#include <climits>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/context.h"
#include "core/backend/cuda/kernels.h"
#include "core/backend/cuda/runtime.h"

namespace plateau::cuda {

namespace {

int checked_int(int64_t v, const char* name) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("plateau: matmul: ") + name + " = " + std::to_string(v) +
                                " is outside cuBLAS's int range [0, " + std::to_string(INT_MAX) +
                                "]; split the product into smaller ones");
  return static_cast<int>(v);
}

// The row stride of a row-major matrix stored [rows, cols], as cuBLAS wants it (>= max(1, cols)).
// With one row the stride is never used, and callers may pass anything (a view's stride of a size-1
// dim): any legal value then does.
int64_t leading_dim(int64_t ld, int64_t rows, int64_t cols, const char* name) {
  const int64_t need = cols > 1 ? cols : 1;
  if (ld >= need) return ld;
  if (rows <= 1) return need;
  throw std::invalid_argument(std::string("plateau: matmul: ") + name + " = " + std::to_string(ld) +
                              " is less than the " + std::to_string(cols) +
                              " columns of its matrix (a bug in the caller: rows would overlap)");
}

// C_i [m, n] (rows ldc apart, matrices stride_c apart) = 0: the product with an empty inner dim.
template <typename T>
__global__ void zero_matrices(T* c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, int64_t total) {
  PLATEAU_GRID_STRIDE_LOOP(i, total) {
    const int64_t batch = i / (m * n), r = i % (m * n);
    c[batch * stride_c + (r / n) * ldc + r % n] = T(0);
  }
}

template <typename T>
void zero_output(int device, void* c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, int64_t batches) {
  const int64_t total = m * n * batches;
  if (ldc == n && (batches == 1 || stride_c == m * n)) {
    // Dense C: one memset (all-zero bits are 0.0 in IEEE floats).
    PLATEAU_CUDA_CHECK(cudaMemsetAsync(c, 0, total * sizeof(T), stream(device)), "matmul (empty inner dimension)");
    return;
  }
  zero_matrices<T>
      <<<grid_for(total), block_threads, 0, stream(device)>>>(static_cast<T*>(c), m, n, ldc, stride_c, total);
  PLATEAU_LAUNCH_CHECK("matmul: zero_matrices");
}

// out[b, i, j] = a[b, i] · c[b, j] (a, c any strides; out contiguous [B, m, n]).
template <typename T>
__global__ void outer_kernel(const T* a, int64_t a_b, int64_t a_i, const T* c, int64_t c_b, int64_t c_j, T* out,
                             int64_t m, int64_t n, int64_t total) {
  PLATEAU_GRID_STRIDE_LOOP(idx, total) {
    const int64_t b = idx / (m * n), r = idx % (m * n), i = r / n, j = r % n;
    out[idx] = a[b * a_b + i * a_i] * c[b * c_b + j * c_j];
  }
}

}  // namespace

// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read as
// column-major is its transpose: so cuBLAS gets (B, A) in that order with the same op flags and
// leading dimensions, and the dims (n, m, k).
void gemm_batched(DType dtype, int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                  int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, void* c, int64_t ldc,
                  int64_t stride_c, int64_t batches) {
  if (dtype != DType::f32 && dtype != DType::f64)
    throw std::invalid_argument(std::string("plateau: matmul needs floating tensors, got ") + dtype_name(dtype));
  set_device(device);
  if (m <= 0 || n <= 0 || batches <= 0) return;
  ldc = leading_dim(ldc, m, n, "ldc");
  if (k <= 0) {
    if (dtype == DType::f64)
      zero_output<double>(device, c, m, n, ldc, stride_c, batches);
    else
      zero_output<float>(device, c, m, n, ldc, stride_c, batches);
    return;
  }
  // Stored shapes: A is [m, k] or (trans_a) [k, m]; B is [k, n] or (trans_b) [n, k].
  lda = trans_a ? leading_dim(lda, k, m, "lda") : leading_dim(lda, m, k, "lda");
  ldb = trans_b ? leading_dim(ldb, n, k, "ldb") : leading_dim(ldb, k, n, "ldb");
  const int im = checked_int(m, "m"), in = checked_int(n, "n"), ik = checked_int(k, "k");
  const int ilda = checked_int(lda, "lda"), ildb = checked_int(ldb, "ldb"), ildc = checked_int(ldc, "ldc");
  const int ibatches = checked_int(batches, "the batch count");
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t handle = cublas(device);

  // Scalars live on the host (the handle's default pointer mode); their type follows the compute type.
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool f64 = dtype == DType::f64;
  const void* alpha = f64 ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* beta = f64 ? static_cast<const void*>(&zero_d) : static_cast<const void*>(&zero_f);
  const cudaDataType_t type = f64 ? CUDA_R_64F : CUDA_R_32F;
  const cublasComputeType_t compute =
      f64 ? CUBLAS_COMPUTE_64F : (allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);

  if (batches == 1) {
    PLATEAU_CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, in, im, ik, alpha, b, type, ildb, a, type, ilda, beta, c,
                                      type, ildc, compute, CUBLAS_GEMM_DEFAULT),
                         "matmul");
    return;
  }
  PLATEAU_CUBLAS_CHECK(
      cublasGemmStridedBatchedEx(handle, op_b, op_a, in, im, ik, alpha, b, type, ildb, stride_b, a, type, ilda,
                                 stride_a, beta, c, type, ildc, stride_c, ibatches, compute, CUBLAS_GEMM_DEFAULT),
      "batched matmul");
}

void batched_outer(const Tensor& a, const Tensor& c, const Tensor& out) {
  const int dev = out.device().index;
  set_device(dev);
  const int64_t m = a.size(1), n = c.size(1), total = out.numel();
  if (total == 0) return;
  if (!out.is_contiguous())
    throw std::logic_error("plateau: batched_outer: the output must be contiguous (a bug in the caller)");
  const int64_t a_b = a.strides()[0], a_i = a.strides()[1], c_b = c.strides()[0], c_j = c.strides()[1];
  switch (a.dtype()) {
    case DType::f32:
      outer_kernel<float><<<grid_for(total), block_threads, 0, stream(dev)>>>(ptr<float>(a), a_b, a_i, ptr<float>(c),
                                                                              c_b, c_j, ptr<float>(out), m, n, total);
      break;
    case DType::f64:
      outer_kernel<double><<<grid_for(total), block_threads, 0, stream(dev)>>>(ptr<double>(a), a_b, a_i, ptr<double>(c),
                                                                               c_b, c_j, ptr<double>(out), m, n, total);
      break;
    default:
      throw std::invalid_argument(std::string("plateau: batched_outer needs a floating tensor, got ") +
                                  dtype_name(a.dtype()));
  }
  PLATEAU_LAUNCH_CHECK("batched_outer");
}

}  // namespace plateau::cuda
