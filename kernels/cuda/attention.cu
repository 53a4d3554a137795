#include "kernels/cuda/attention.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {

namespace {

constexpr int kBQ = 16;       // rows (query token x group head) per block
constexpr int kBK = 32;       // KV tokens per tile
constexpr int kThreads = 128; // 8 threads per row: thread (r, c) = (tid / 8, tid % 8)

struct Params {
  DeviceAttentionArgs a;
  int64_t group;          // query heads per KV head
  int64_t rows_per_kvh;   // n_q * group
  int64_t kv_chunk;       // KV tokens per split (multiple of kBK)
  int n_splits;
  bool vec_load;          // K/V rows 16-byte aligned: tiles load as float4
  float* part_o;          // [n_splits][n_kv_heads][rows_per_kvh][head_dim] (n_splits > 1)
  float* part_lse;        // [n_splits][n_kv_heads][rows_per_kvh]
};

__device__ __forceinline__ int64_t imin(int64_t x, int64_t y) { return x < y ? x : y; }

// Shared memory: q [kBQ][D+4], k [kBK][D+4], v [kBK][D], p [kBQ][kBK+1] (floats).
// Rows of q and k are read as float4 along d; the +4 pad staggers the 8 keys (or 4
// rows) one warp reads at once over distinct banks while keeping 16-byte alignment.
template <int D>
constexpr int kPad = D + 4;
template <int D>
constexpr size_t smem_bytes() {
  return sizeof(float) * (kBQ * kPad<D> + kBK * kPad<D> + kBK * D + kBQ * (kBK + 1));
}

// Thread (r, c): row r of the tile; scores for keys c, c+8, c+16, c+24; output dims
// 4c + 32j .. 4c + 32j + 3 for j < D/32 (float4 reads of v).
template <int D>
__global__ void __launch_bounds__(kThreads) attention_kernel(Params p) {
  extern __shared__ __align__(16) float smem[];
  float* q_s = smem;
  float* k_s = q_s + kBQ * kPad<D>;
  float* v_s = k_s + kBK * kPad<D>;
  float* p_s = v_s + kBK * D;
  const DeviceAttentionArgs& a = p.a;
  const int hd = static_cast<int>(a.head_dim);
  const int hd4 = (hd + 3) / 4;  // float4 steps over d (entries beyond hd are zero in q_s and k_s)
  const int64_t kvh = blockIdx.y;
  const int split = blockIdx.z;
  const int tid = threadIdx.x, r = tid / 8, c = tid % 8;
  const int64_t q_stride = a.q_stride ? a.q_stride : a.n_heads * a.head_dim;
  const int64_t kv_tok = a.n_kv_heads * a.head_dim;
  const int64_t block_stride = a.block_stride ? a.block_stride : a.block_size * kv_tok;

  // This thread's row.
  const int64_t rg = int64_t{blockIdx.x} * kBQ + r;
  const int64_t t = rg / p.group;
  const int64_t h = kvh * p.group + rg % p.group;
  const bool valid_row = t < a.n_q;
  // The context length: the argument, or (CUDA-graph replays) the device's value, with
  // the queries the last n_q positions and the KV split re-derived from it.
  int64_t n_kv = a.n_kv, q_pos0 = a.q_pos0, kv_chunk = p.kv_chunk;
  if (a.n_kv_dev) {
    n_kv = *a.n_kv_dev;
    q_pos0 = a.kv_pos0 + n_kv - a.n_q;
    kv_chunk = ((n_kv + p.n_splits - 1) / p.n_splits + kBK - 1) / kBK * kBK;
    if (kv_chunk == 0) kv_chunk = kBK;
  }
  const int64_t qp = q_pos0 + t;

  for (int e = tid; e < kBQ * D; e += kThreads) {
    const int rr = e / D, d = e % D;
    const int64_t rgg = int64_t{blockIdx.x} * kBQ + rr;
    const int64_t tt = rgg / p.group;
    const int64_t hh = kvh * p.group + rgg % p.group;
    q_s[rr * kPad<D> + d] = (tt < a.n_q && d < hd) ? a.q[tt * q_stride + hh * a.head_dim + d] : 0.0f;
  }

  // KV range of this split, cut at the last position any row of the tile can see.
  const int64_t kb = split * kv_chunk;
  int64_t ke = imin(n_kv, kb + kv_chunk);
  if (a.causal) {
    const int64_t last_row = imin(int64_t{blockIdx.x} * kBQ + kBQ - 1, p.rows_per_kvh - 1);
    const int64_t max_qp = q_pos0 + last_row / p.group;
    ke = imin(ke, max_qp - a.kv_pos0 + 1);
  }

  constexpr int kV4 = D / 32;  // float4 output groups per thread
  float4 o[kV4];
#pragma unroll
  for (int j = 0; j < kV4; ++j) o[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float m = -INFINITY, l = 0.0f;

  for (int64_t k0 = kb; k0 < ke; k0 += kBK) {
    __syncthreads();  // previous tile fully used (and q_s written, first time round)
    if (p.vec_load) {
      constexpr int kD4 = D / 4;
      for (int e = tid; e < kBK * kD4; e += kThreads) {
        const int kk = e / kD4, d = 4 * (e % kD4);
        const int64_t j = k0 + kk;
        float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
        if (j < ke && d < hd) {
          const int64_t off = int64_t{a.block_table[j / a.block_size]} * block_stride +
                              (j % a.block_size) * kv_tok + kvh * a.head_dim + d;
          kv = *reinterpret_cast<const float4*>(a.k_cache + off);
          vv = *reinterpret_cast<const float4*>(a.v_cache + off);
        }
        *reinterpret_cast<float4*>(k_s + kk * kPad<D> + d) = kv;
        *reinterpret_cast<float4*>(v_s + kk * D + d) = vv;
      }
    } else {
      for (int e = tid; e < kBK * D; e += kThreads) {
        const int kk = e / D, d = e % D;
        const int64_t j = k0 + kk;
        float kv = 0.0f, vv = 0.0f;
        if (j < ke && d < hd) {
          const int64_t off = int64_t{a.block_table[j / a.block_size]} * block_stride +
                              (j % a.block_size) * kv_tok + kvh * a.head_dim + d;
          kv = a.k_cache[off];
          vv = a.v_cache[off];
        }
        k_s[kk * kPad<D> + d] = kv;
        v_s[kk * D + d] = vv;
      }
    }
    __syncthreads();

    // Scores of this thread's 4 keys, q . k over float4 steps.
    float dot[kBK / 8] = {};
    for (int d4 = 0; d4 < hd4; ++d4) {
      const float4 qv = *reinterpret_cast<const float4*>(q_s + r * kPad<D> + 4 * d4);
#pragma unroll
      for (int jj = 0; jj < kBK / 8; ++jj) {
        const float4 kv = *reinterpret_cast<const float4*>(k_s + (c + 8 * jj) * kPad<D> + 4 * d4);
        dot[jj] = fmaf(qv.x, kv.x, dot[jj]);
        dot[jj] = fmaf(qv.y, kv.y, dot[jj]);
        dot[jj] = fmaf(qv.z, kv.z, dot[jj]);
        dot[jj] = fmaf(qv.w, kv.w, dot[jj]);
      }
    }
    float sc[kBK / 8];
    float tile_max = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < kBK / 8; ++jj) {
      const int64_t j = k0 + c + 8 * jj;
      const int64_t kp = a.kv_pos0 + j;
      const bool visible = valid_row && j < ke && (!a.causal || kp <= qp) && (a.window <= 0 || kp > qp - a.window);
      float s = -INFINITY;
      if (visible) {
        s = dot[jj] * a.scale;
        if (a.softcap > 0) s = a.softcap * tanhf(s / a.softcap);
      }
      sc[jj] = s;
      tile_max = fmaxf(tile_max, s);
    }
    // The 8 threads of a row are 8 consecutive lanes of one warp.
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 4));
    const float m_new = fmaxf(m, tile_max);
    const float alpha = m_new == -INFINITY ? 1.0f : expf(m - m_new);  // m = -inf -> 0
    float psum = 0.0f;
#pragma unroll
    for (int jj = 0; jj < kBK / 8; ++jj) {
      const float pv = m_new == -INFINITY ? 0.0f : expf(sc[jj] - m_new);
      p_s[r * (kBK + 1) + c + 8 * jj] = pv;
      psum += pv;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    psum += __shfl_xor_sync(0xffffffffu, psum, 2);
    psum += __shfl_xor_sync(0xffffffffu, psum, 4);
    l = l * alpha + psum;
    m = m_new;
    __syncwarp();  // p_s row r is written and read by the same 8 lanes
#pragma unroll
    for (int j = 0; j < kV4; ++j) {
      o[j].x *= alpha;
      o[j].y *= alpha;
      o[j].z *= alpha;
      o[j].w *= alpha;
    }
    const int kk_end = static_cast<int>(imin(kBK, ke - k0));  // p is 0 beyond, skip the work
    for (int kk = 0; kk < kk_end; ++kk) {
      const float pk = p_s[r * (kBK + 1) + kk];
#pragma unroll
      for (int j = 0; j < kV4; ++j) {
        const float4 vv = *reinterpret_cast<const float4*>(v_s + kk * D + 4 * c + 32 * j);
        o[j].x = fmaf(pk, vv.x, o[j].x);
        o[j].y = fmaf(pk, vv.y, o[j].y);
        o[j].z = fmaf(pk, vv.z, o[j].z);
        o[j].w = fmaf(pk, vv.w, o[j].w);
      }
    }
  }

  if (!valid_row) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  const float lse = l > 0.0f ? m + logf(l) : -INFINITY;
  float* out;
  if (p.n_splits == 1) {
    const int64_t out_stride = a.out_stride ? a.out_stride : a.n_heads * a.head_dim;
    out = a.out + t * out_stride + h * a.head_dim;
    if (a.lse && c == 0) a.lse[t * a.n_heads + h] = lse;
  } else {
    const int64_t prow = (int64_t{split} * a.n_kv_heads + kvh) * p.rows_per_kvh + rg;
    out = p.part_o + prow * a.head_dim;
    if (c == 0) p.part_lse[prow] = lse;
  }
#pragma unroll
  for (int j = 0; j < kV4; ++j) {
    const int d = 4 * c + 32 * j;
    const float vals[4] = {o[j].x * inv, o[j].y * inv, o[j].z * inv, o[j].w * inv};
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (d + e < hd) out[d + e] = vals[e];
  }
}

// Merges the splits of one (row, KV head): grid (rows_per_kvh, n_kv_heads), 32 threads.
__global__ void merge_splits_kernel(Params p) {
  const DeviceAttentionArgs& a = p.a;
  const int64_t rg = blockIdx.x, kvh = blockIdx.y;
  const int64_t t = rg / p.group, h = kvh * p.group + rg % p.group;
  float mx = -INFINITY;
  for (int s = 0; s < p.n_splits; ++s)
    mx = fmaxf(mx, p.part_lse[(int64_t{s} * a.n_kv_heads + kvh) * p.rows_per_kvh + rg]);
  const int64_t out_stride = a.out_stride ? a.out_stride : a.n_heads * a.head_dim;
  float* out = a.out + t * out_stride + h * a.head_dim;
  if (mx == -INFINITY) {
    for (int64_t d = threadIdx.x; d < a.head_dim; d += blockDim.x) out[d] = 0.0f;
    if (a.lse && threadIdx.x == 0) a.lse[t * a.n_heads + h] = -INFINITY;
    return;
  }
  float wsum = 0.0f;
  for (int s = 0; s < p.n_splits; ++s)
    wsum += expf(p.part_lse[(int64_t{s} * a.n_kv_heads + kvh) * p.rows_per_kvh + rg] - mx);
  for (int64_t d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < p.n_splits; ++s) {
      const int64_t prow = (int64_t{s} * a.n_kv_heads + kvh) * p.rows_per_kvh + rg;
      const float w = expf(p.part_lse[prow] - mx);  // 0 for a split that saw nothing
      acc += w * p.part_o[prow * a.head_dim + d];
    }
    out[d] = acc / wsum;
  }
  if (a.lse && threadIdx.x == 0) a.lse[t * a.n_heads + h] = mx + logf(wsum);
}

__global__ void merge_pair_kernel(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int64_t dim) {
  const int64_t r = blockIdx.x;
  const float la = lse_a[r], lb = lse_b[r];
  float* oa = out_a + r * dim;
  const float* ob = out_b + r * dim;
  if (lb == -INFINITY) return;
  __syncthreads();
  if (la == -INFINITY) {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) oa[i] = ob[i];
    __syncthreads();
    if (threadIdx.x == 0) lse_a[r] = lb;
    return;
  }
  const float mx = fmaxf(la, lb);
  const float wa = expf(la - mx), wb = expf(lb - mx);
  const float inv = 1.0f / (wa + wb);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) oa[i] = (wa * oa[i] + wb * ob[i]) * inv;
  __syncthreads();  // every thread has read lse_a[r]
  if (threadIdx.x == 0) lse_a[r] = mx + logf(wa + wb);
}

template <int D>
void launch(const Params& p, dim3 grid, cudaStream_t s) {
  constexpr size_t bytes = smem_bytes<D>();
  if constexpr (bytes > 48 * 1024)
    TESSERA_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)));
  attention_kernel<D><<<grid, kThreads, bytes, s>>>(p);
  TESSERA_CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention(const DeviceAttentionArgs& a, DevicePool& pool, int sm_count, cudaStream_t s) {
  TESSERA_REQUIRE(a.head_dim > 0 && a.head_dim <= 256, ErrorKind::kUnsupported, "CUDA attention: head_dim ",
                  a.head_dim, " (supported: 1..256)");
  CHECK(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0)
      << "heads " << a.n_heads << " kv heads " << a.n_kv_heads;
  CHECK_GT(a.block_size, 0);
  if (a.n_q == 0) return;
  Params p{};
  p.a = a;
  p.group = a.n_heads / a.n_kv_heads;
  p.rows_per_kvh = a.n_q * p.group;
  const int64_t block_stride = a.block_stride ? a.block_stride : a.block_size * a.n_kv_heads * a.head_dim;
  p.vec_load = a.head_dim % 4 == 0 && block_stride % 4 == 0 && reinterpret_cast<uintptr_t>(a.k_cache) % 16 == 0 &&
               reinterpret_cast<uintptr_t>(a.v_cache) % 16 == 0;
  const int64_t q_tiles = (p.rows_per_kvh + kBQ - 1) / kBQ;
  const int64_t base_blocks = q_tiles * a.n_kv_heads;
  // Split the KV range when the blocks would not cover the GPU twice over; each split
  // keeps at least 4 tiles (128 tokens) so the merge stays cheap.
  int64_t n_splits = 1;
  if (sm_count > 0 && base_blocks < 2 * sm_count && a.n_kv > 4 * kBK) {
    n_splits = std::min<int64_t>((2 * sm_count + base_blocks - 1) / base_blocks, (a.n_kv + 4 * kBK - 1) / (4 * kBK));
    n_splits = std::max<int64_t>(n_splits, 1);
  }
  p.kv_chunk = ((a.n_kv + n_splits - 1) / n_splits + kBK - 1) / kBK * kBK;
  if (p.kv_chunk == 0) p.kv_chunk = kBK;
  n_splits = std::max<int64_t>(1, (a.n_kv + p.kv_chunk - 1) / p.kv_chunk);
  p.n_splits = static_cast<int>(n_splits);
  void* scratch = nullptr;
  if (n_splits > 1) {
    const int64_t rows = n_splits * a.n_kv_heads * p.rows_per_kvh;
    scratch = pool.allocate(static_cast<size_t>(rows * (a.head_dim + 1)) * sizeof(float));
    p.part_o = static_cast<float*>(scratch);
    p.part_lse = p.part_o + rows * a.head_dim;
  }
  const dim3 grid(static_cast<unsigned>(q_tiles), static_cast<unsigned>(a.n_kv_heads), static_cast<unsigned>(n_splits));
  if (a.head_dim <= 32) launch<32>(p, grid, s);
  else if (a.head_dim <= 64) launch<64>(p, grid, s);
  else if (a.head_dim <= 128) launch<128>(p, grid, s);
  else launch<256>(p, grid, s);
  if (n_splits > 1) {
    merge_splits_kernel<<<dim3(static_cast<unsigned>(p.rows_per_kvh), static_cast<unsigned>(a.n_kv_heads)), 32, 0, s>>>(p);
    TESSERA_CUDA_CHECK_LAUNCH();
    pool.free(scratch);  // stream-ordered: the next user of this block runs after the merge
  }
}

void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b, int64_t n_rows,
                     int64_t dim, cudaStream_t s) {
  if (n_rows == 0) return;
  merge_pair_kernel<<<static_cast<unsigned>(n_rows), 64, 0, s>>>(out_a, lse_a, out_b, lse_b, dim);
  TESSERA_CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::kernels::cuda
