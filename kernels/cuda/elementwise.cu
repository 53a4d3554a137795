// Element-wise device ops. Reductions (rmsnorm, softmax) use one block per row and
// accumulate in f32 (the reference sums in double; tolerances in tests/cuda).
#include "kernels/cuda/elementwise.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <glog/logging.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/reference.h"

namespace tessera::kernels::cuda {

namespace {

constexpr int kThreads = 256;

int grid_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(b < 65535 * 8 ? b : 65535 * 8);
}

// Sum of v over the block (blockDim.x a multiple of 32, <= 1024); every thread gets it.
__device__ float block_sum(float v) {
  __shared__ float warp_part[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // warp_part may still be read by a previous call
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  const int n_warps = blockDim.x >> 5;
  v = lane < n_warps ? warp_part[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ float block_max(float v) {
  __shared__ float warp_part[32];
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  const int n_warps = blockDim.x >> 5;
  v = lane < n_warps ? warp_part[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__global__ void rmsnorm_kernel(const float* x, const float* w, float* out, int64_t dim, float eps) {
  const float* xr = x + blockIdx.x * dim;
  float* o = out + blockIdx.x * dim;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = xr[i] * inv * w[i];
}

// One thread per (token, head, pair). angle = f32 pos * f32 inv_freq (the reference's
// operation); cos/sin and the rotation in double, as the reference does.
__global__ void rope_kernel(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
                            const int32_t* pos, const float* inv_freq, bool interleaved, int64_t token_stride) {
  const int64_t half = rot_dim / 2;
  const int64_t total = n_tok * n_heads * half;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t th = idx / half;  // token * n_heads + head
    const int64_t t = th / n_heads;
    const float angle = __fmul_rn(static_cast<float>(pos[t]), inv_freq[i]);  // no FMA contraction
    double sd, cd;
    sincos(static_cast<double>(angle), &sd, &cd);
    float* v = x + t * token_stride + (th % n_heads) * head_dim;
    const int64_t i0 = interleaved ? 2 * i : i;
    const int64_t i1 = interleaved ? 2 * i + 1 : i + half;
    const double a = v[i0], b = v[i1];
    v[i0] = static_cast<float>(a * cd - b * sd);
    v[i1] = static_cast<float>(a * sd + b * cd);
  }
}

__global__ void add_rmsnorm_kernel(float* x, const float* delta, const float* w, float* out, int64_t dim, float eps) {
  float* xr = x + blockIdx.x * dim;
  const float* dr = delta + blockIdx.x * dim;
  float* o = out + blockIdx.x * dim;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = xr[i] + dr[i];
    xr[i] = v;  // read back below by this same thread only
    ss += v * v;
  }
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = xr[i] * inv * w[i];
}

__global__ void softmax_kernel(float* x, int64_t n) {
  float* v = x + blockIdx.x * n;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, v[i]);
  m = block_max(m);
  float sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += expf(v[i] - m);
  sum = block_sum(sum);
  const float inv = 1.0f / sum;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) v[i] = expf(v[i] - m) * inv;
}

__device__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
__device__ float gelu_f(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  // 0.5 x (1 + tanh z) = x / (1 + e^(-2z)): the same function without the cancellation
  // of 1 + tanh z for z << 0 (there tanhf rounds to -1 and the f32 result to 0).
  const float z = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  return x / (1.0f + expf(-2.0f * z));
}

#define TESSERA_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{gridDim.x} * blockDim.x)

__global__ void silu_mul_kernel(float* g, const float* u, int64_t n) { TESSERA_GRID_STRIDE(i, n) g[i] = silu_f(g[i]) * u[i]; }
__global__ void gelu_mul_kernel(float* g, const float* u, int64_t n) { TESSERA_GRID_STRIDE(i, n) g[i] = gelu_f(g[i]) * u[i]; }
__global__ void silu_kernel(float* x, int64_t n) { TESSERA_GRID_STRIDE(i, n) x[i] = silu_f(x[i]); }
__global__ void gelu_kernel(float* x, int64_t n) { TESSERA_GRID_STRIDE(i, n) x[i] = gelu_f(x[i]); }
__global__ void add_kernel(float* y, const float* x, int64_t n) { TESSERA_GRID_STRIDE(i, n) y[i] += x[i]; }
__global__ void to_bf16_kernel(const float* s, __nv_bfloat16* d, int64_t n) { TESSERA_GRID_STRIDE(i, n) d[i] = __float2bfloat16_rn(s[i]); }
__global__ void to_f16_kernel(const float* s, __half* d, int64_t n) { TESSERA_GRID_STRIDE(i, n) d[i] = __float2half_rn(s[i]); }

// One block per id; Q8_0 rows are 34-byte blocks (f16 d, 32 x int8).
__global__ void embedding_kernel(DType t, const uint8_t* table, int64_t rows, int64_t cols, int64_t row_stride,
                                 const int32_t* ids, float scale, float* out) {
  const int64_t id = ids[blockIdx.x];
  float* o = out + blockIdx.x * cols;
  const bool in = id >= 0 && id < rows;
  const uint8_t* row = table + (in ? id : 0) * row_stride;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    float v = 0;
    if (in) {
      switch (t) {
        case DType::kF32: v = reinterpret_cast<const float*>(row)[i]; break;
        case DType::kF16: v = __half2float(reinterpret_cast<const __half*>(row)[i]); break;
        case DType::kBF16: v = __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[i]); break;
        case DType::kQ8_0: {
          const uint8_t* b = row + (i / 32) * 34;
          const __half d = *reinterpret_cast<const __half*>(b);
          v = __half2float(d) * static_cast<float>(reinterpret_cast<const int8_t*>(b + 2)[i % 32]);
          break;
        }
        case DType::kQ4_0:
        case DType::kQ4_1:
        case DType::kI32: break;  // rejected on the host
      }
      v *= scale;
    }
    o[i] = v;
  }
}

__global__ void gated_act_rows_kernel(const float* gu, int64_t width, bool gelu, float* out) {
  const float* g = gu + blockIdx.x * 2 * width;
  const float* u = g + width;
  float* o = out + blockIdx.x * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) o[i] = (gelu ? gelu_f(g[i]) : silu_f(g[i])) * u[i];
}

__global__ void append_kv_kernel(const float* qkv, int64_t stride, int64_t k_col, int64_t v_col, const int64_t* slots,
                                 int64_t cols, float* k_dst, float* v_dst) {
  const float* row = qkv + blockIdx.x * stride;
  const int64_t slot = slots[blockIdx.x];
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    k_dst[slot * cols + i] = row[k_col + i];
    v_dst[slot * cols + i] = row[v_col + i];
  }
}

__global__ void gather_kernel(const float* src, const int32_t* rows, int64_t cols, float* dst) {
  const float* s = src + rows[blockIdx.x] * cols;
  float* d = dst + blockIdx.x * cols;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) d[i] = s[i];
}

__global__ void scatter_kernel(const float* src, const int64_t* slots, int64_t cols, float* dst) {
  const float* s = src + blockIdx.x * cols;
  float* d = dst + slots[blockIdx.x] * cols;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) d[i] = s[i];
}

int row_threads(int64_t cols) { return cols >= 1024 ? 1024 : cols >= 256 ? 256 : 64; }

}  // namespace

void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim, float eps, cudaStream_t s) {
  if (n_rows == 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(n_rows), row_threads(dim), 0, s>>>(x, w, out, dim, eps);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const int32_t* pos,
          const float* inv_freq, RopeLayout layout, int64_t token_stride, cudaStream_t s) {
  CHECK(rot_dim % 2 == 0 && rot_dim <= head_dim) << "rot_dim " << rot_dim;
  const int64_t total = n_tok * n_heads * (rot_dim / 2);
  if (total == 0) return;
  if (token_stride == 0) token_stride = n_heads * head_dim;
  rope_kernel<<<grid_for(total), kThreads, 0, s>>>(x, n_tok, n_heads, head_dim, rot_dim, pos, inv_freq,
                                                    layout == RopeLayout::kInterleaved, token_stride);
  TESSERA_CUDA_CHECK_LAUNCH();
}

std::vector<float> rope_inv_freq_table(int64_t rot_dim, float theta) {
  std::vector<float> f(static_cast<size_t>(rot_dim / 2));
  for (int64_t i = 0; i < rot_dim / 2; ++i) f[static_cast<size_t>(i)] = ref::rope_inv_freq(i, rot_dim, theta);
  return f;
}

void add_rmsnorm(float* x, const float* delta, const float* w, float* out, int64_t n_rows, int64_t dim, float eps,
                 cudaStream_t s) {
  if (n_rows == 0) return;
  add_rmsnorm_kernel<<<static_cast<unsigned>(n_rows), row_threads(dim), 0, s>>>(x, delta, w, out, dim, eps);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void gated_act_rows(const float* gu, int64_t n_rows, int64_t width, bool gelu, float* out, cudaStream_t s) {
  if (n_rows == 0) return;
  gated_act_rows_kernel<<<static_cast<unsigned>(n_rows), row_threads(width), 0, s>>>(gu, width, gelu, out);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void append_kv(const float* qkv, int64_t stride, int64_t k_col, int64_t v_col, const int64_t* slots, int64_t n,
               int64_t cols, float* k_dst, float* v_dst, cudaStream_t s) {
  if (n == 0) return;
  append_kv_kernel<<<static_cast<unsigned>(n), row_threads(cols), 0, s>>>(qkv, stride, k_col, v_col, slots, cols,
                                                                           k_dst, v_dst);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void softmax(float* x, int64_t n_rows, int64_t n, cudaStream_t s) {
  if (n_rows == 0) return;
  softmax_kernel<<<static_cast<unsigned>(n_rows), row_threads(n), 0, s>>>(x, n);
  TESSERA_CUDA_CHECK_LAUNCH();
}

#define TESSERA_LAUNCH_1D(kernel, n, ...)                           \
  do {                                                              \
    if ((n) == 0) return;                                           \
    kernel<<<grid_for(n), kThreads, 0, s>>>(__VA_ARGS__);            \
    TESSERA_CUDA_CHECK_LAUNCH();                                    \
  } while (0)

void silu_mul(float* gate, const float* up, int64_t n, cudaStream_t s) { TESSERA_LAUNCH_1D(silu_mul_kernel, n, gate, up, n); }
void gelu_mul(float* gate, const float* up, int64_t n, cudaStream_t s) { TESSERA_LAUNCH_1D(gelu_mul_kernel, n, gate, up, n); }
void silu(float* x, int64_t n, cudaStream_t s) { TESSERA_LAUNCH_1D(silu_kernel, n, x, n); }
void gelu(float* x, int64_t n, cudaStream_t s) { TESSERA_LAUNCH_1D(gelu_kernel, n, x, n); }
void add_inplace(float* y, const float* x, int64_t n, cudaStream_t s) { TESSERA_LAUNCH_1D(add_kernel, n, y, x, n); }

void convert_f32(const float* src, void* dst, DType t, int64_t n, cudaStream_t s) {
  CHECK(t == DType::kBF16 || t == DType::kF16) << "convert_f32 to " << dtype_name(t);
  if (t == DType::kBF16)
    TESSERA_LAUNCH_1D(to_bf16_kernel, n, src, static_cast<__nv_bfloat16*>(dst), n);
  else
    TESSERA_LAUNCH_1D(to_f16_kernel, n, src, static_cast<__half*>(dst), n);
}

void embedding(DType t, const void* table, int64_t rows, int64_t cols, int64_t row_stride, const int32_t* ids,
               int64_t n_ids, float scale, float* out, cudaStream_t s) {
  TESSERA_REQUIRE(t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kQ8_0,
                  ErrorKind::kUnsupported, "CUDA embedding lookup of ", dtype_name(t),
                  " tables is not implemented (F32, F16, BF16, Q8_0)");
  if (n_ids == 0) return;
  embedding_kernel<<<static_cast<unsigned>(n_ids), row_threads(cols), 0, s>>>(
      t, static_cast<const uint8_t*>(table), rows, cols, row_stride, ids, scale, out);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void gather_rows(const float* src, const int32_t* rows, int64_t n_rows, int64_t cols, float* dst, cudaStream_t s) {
  if (n_rows == 0) return;
  gather_kernel<<<static_cast<unsigned>(n_rows), row_threads(cols), 0, s>>>(src, rows, cols, dst);
  TESSERA_CUDA_CHECK_LAUNCH();
}

void scatter_rows(const float* src, const int64_t* slots, int64_t n, int64_t cols, float* dst, cudaStream_t s) {
  if (n == 0) return;
  scatter_kernel<<<static_cast<unsigned>(n), row_threads(cols), 0, s>>>(src, slots, cols, dst);
  TESSERA_CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::kernels::cuda
