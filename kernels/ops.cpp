// Dispatch: validates shapes, splits work over the pool and picks the ISA path.
#include "kernels/ops.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/isa_kernels.h"
#include "kernels/q8_packed.h"
#include "kernels/reference.h"

namespace tessera::kernels {

namespace {

// Per-thread scratch that only grows: decode calls matmul ~7 times per layer per
// token, so buffers are reused rather than allocated (and page-faulted) per call.
struct alignas(64) Line64 {
  float v[16];
};
float* thread_buffer(int slot, int64_t floats) {
  thread_local std::vector<Line64> buffers[3];
  auto& b = buffers[slot];
  const size_t lines = static_cast<size_t>((floats + 15) / 16);
  if (b.size() < lines) b.resize(lines);
  return b.front().v;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The activation packer of the int8 kernels in plain C++ (the AVX2 level uses it; the
// AVX-512 one is vectorised): ref::quantize_act_block per block, QActPair layout.
void quantize_acts_generic(DType wt, const float* x, int64_t cols, QActPair* out) {
  const int64_t nb = cols / kQuantBlock, np = qact_pairs(cols);
  const bool q4 = wt != DType::kQ8_0;
  const int32_t off = wt == DType::kQ8_0 ? -128 : (wt == DType::kQ4_0 ? -8 : 0);
  for (int64_t p = 0; p < np; ++p) {
    QActPair& o = out[p];
    std::memset(&o, 0, sizeof(o));
    for (int h = 0; h < 2 && 2 * p + h < nb; ++h) {
      int8_t q[32];
      float d, s;
      ref::quantize_act_block(x + 32 * (2 * p + h), q, &d, &s);
      if (!q4) {
        std::memcpy(o.q + 32 * h, q, 32);
        for (int l = 8 * h; l < 8 * h + 8; ++l) o.d[l] = d;
      } else {
        std::memcpy(o.q + 16 * h, q, 16);
        std::memcpy(o.q + 32 + 16 * h, q + 16, 16);
        for (int l = 0; l < 4; ++l) o.d[4 * h + l] = o.d[8 + 4 * h + l] = d;
        o.s[4 * h] = s;
      }
    }
    for (int l = 0; l < 16; ++l)
      o.corr[l] = off * (o.q[4 * l] + o.q[4 * l + 1] + o.q[4 * l + 2] + o.q[4 * l + 3]);
  }
}

// The vector matmul entry points of one ISA.
struct MatmulFns {
  decltype(&avx512::gemv_float) gemv_float;
  decltype(&avx512::quantize_acts) quantize_acts;
  decltype(&avx512::qgemm_rows) qgemm_rows;
  decltype(&avx512::round_acts) round_acts;
  decltype(&avx512::gemm_pack_x) gemm_pack_x;
  decltype(&avx512::gemm_rows) gemm_rows;
};
constexpr MatmulFns kAvx512Matmul{avx512::gemv_float, avx512::quantize_acts, avx512::qgemm_rows,
                                  avx512::round_acts, avx512::gemm_pack_x, avx512::gemm_rows};
constexpr MatmulFns kAvx2Matmul{avx2::gemv_float, quantize_acts_generic, avx2::qgemm_rows,
                                avx2::round_acts, avx2::gemm_pack_x, avx2::gemm_rows};

// Below this many multiply-adds a matmul runs on the calling thread: waking a worker
// costs more than it saves (tiny models, e.g. stories260K's dim-64 layers).
constexpr int64_t kInlineMacs = 64 * 1024;

template <typename F>
void split(ThreadPool& pool, int64_t macs, int64_t units, const F& fn) {
  if (macs < kInlineMacs || pool.size() == 1) return fn(int64_t{0}, units, 0);
  pool.parallel_for(units, fn);
}

// vdpbf16ps GEMM for BF16 weights with bf16 activations. Off: on the Sapphire Rapids VM
// it was measured 12 % slower than the f32 GEMM on the same (exactly representable)
// products - 65 vs 73 GFLOP/s on one core; vdpbf16ps peaks at only 1.1x the f32 FMA
// rate there (docs/KERNELS.md). Both give llama.cpp's result up to summation order.
// Kept, and tested directly (MatmulBf16Dot), for CPUs where it pays.
constexpr bool kUseVdpbf16ps = false;

void matmul_vec(const MatmulFns& f, ThreadPool& pool, const WeightMatrix& w, const float* x,
                int64_t n, float* y, int64_t xs, int64_t ys) {
  const int64_t macs = n * w.rows * w.cols;
  if (dtype_is_quantized(w.dtype)) {
    // llama.cpp's activation rounding: x as Q8_0 / Q8_1 blocks (QActPair), int8 kernels
    // for decode and prefill alike.
    const int64_t np = qact_pairs(w.cols);
    auto* xq = reinterpret_cast<QActPair*>(thread_buffer(0, n * np * 64));
    // (decode quantises its one row on the caller: a dispatch for one unit is waste)
    split(pool, n >= 4 ? n * w.cols * 64 : 0, n, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) f.quantize_acts(w.dtype, x + t * xs, w.cols, xq + t * np);
    });
    // Q4_1 with ggml_q41_order runs llama.cpp's exact f32 order (AVX2 kernel, see
    // ref::q4_1_dot_ggml_order): its m_w s_x term nearly cancels the rest, so another
    // summation order is ~1e-5 |y| off llama.cpp, which can flip Q8_1 roundings downstream.
    const auto qrows = w.dtype == DType::kQ4_1 && w.ggml_q41_order ? avx2::qgemm_rows : f.qgemm_rows;
    constexpr int64_t kRowUnit = 4;
    split(pool, macs, ceil_div(w.rows, kRowUnit), [&](int64_t u0, int64_t u1, int) {
      qrows(w, xq, n, y, ys, u0 * kRowUnit, std::min(w.rows, u1 * kRowUnit));
    });
    return;
  }
  if (kUseVdpbf16ps && w.dtype == DType::kBF16 && rounds_activations(w) && n >= kGemmMinTokens &&
      w.cols % 2 == 0 && active_isa() >= Isa::kAvx512Bf16) {
    // bf16 x bf16 with vdpbf16ps (x rounded to bf16 while packing).
    const int64_t groups = ceil_div(n, kGemmTokens);
    auto* xp = reinterpret_cast<uint16_t*>(thread_buffer(2, ceil_div(groups * kGemmTokens * w.cols, 2)));
    avx512bf16::gemm_pack_x(x, n, xs, w.cols, xp);
    split(pool, macs, ceil_div(w.rows, kGemmMaxMr), [&](int64_t u0, int64_t u1, int) {
      auto* scratch = reinterpret_cast<uint16_t*>(thread_buffer(0, kGemmMaxMr * kGemmKc / 2));
      avx512bf16::gemm_rows(w, xp, n, y, ys, u0 * kGemmMaxMr, std::min(w.rows, u1 * kGemmMaxMr), scratch);
    });
    return;
  }
  if (rounds_activations(w)) {
    // F16 / BF16 weights in kWeightType mode: llama.cpp rounds x to the weight type; products of two fp16 or
    // two bf16 values are exact in f32, so an f32 FMA on rounded x is that dot product.
    float* xr = thread_buffer(1, n * w.cols);
    for (int64_t t = 0; t < n; ++t) f.round_acts(w.dtype, x + t * xs, xr + t * w.cols, w.cols);
    x = xr;
    xs = w.cols;
  }
  if (n < kGemmMinTokens) {
    constexpr int64_t kRowUnit = 4;  // the GEMV row tile
    split(pool, macs, ceil_div(w.rows, kRowUnit), [&](int64_t u0, int64_t u1, int) {
      f.gemv_float(w, x, n, xs, y, ys, u0 * kRowUnit, std::min(w.rows, u1 * kRowUnit));
    });
    return;
  }
  const int64_t groups = ceil_div(n, kGemmTokens);
  float* xp = thread_buffer(2, groups * kGemmTokens * w.cols);
  f.gemm_pack_x(x, n, xs, w.cols, xp);
  const int64_t units = ceil_div(w.rows, kGemmMaxMr);
  split(pool, macs, units, [&](int64_t u0, int64_t u1, int) {
    float* scratch = thread_buffer(0, kGemmMaxMr * kGemmKc);
    f.gemm_rows(w, xp, n, y, ys, u0 * kGemmMaxMr, std::min(w.rows, u1 * kGemmMaxMr), scratch);
  });
}

// Q8_0 with 16 rows interleaved (kernels/q8_packed.h): x quantised exactly as for
// row-major Q8_0, plus each block's offset correction and scale, then row groups split
// over the pool.
void matmul_q8_rows16(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n, float* y,
                      int64_t xs, int64_t ys) {
  CHECK(w.dtype == DType::kQ8_0) << "Q8Rows16 layout with dtype " << dtype_name(w.dtype);
  if (!q8_rows16_available()) {  // not expected (packing happens only where the kernel runs)
    std::vector<BlockQ8_0> row(static_cast<size_t>(w.cols / 32));
    WeightMatrix one;
    one.dtype = DType::kQ8_0;
    one.rows = 1;
    one.cols = w.cols;
    one.data = row.data();
    for (int64_t r = 0; r < w.rows; ++r) {
      unpack_q8_rows16_row(w, r, row.data());
      ref::matmul_rows(one, x, n, y + r, xs, ys, 0, 1);
    }
    return;
  }
  const int64_t np = qact_pairs(w.cols);
  auto* xq = reinterpret_cast<QActPair*>(thread_buffer(0, n * np * 64));
  split(pool, n >= 4 ? n * w.cols * 64 : 0, n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) avx512::quantize_acts(DType::kQ8_0, x + t * xs, w.cols, xq + t * np);
  });
  auto* cd = reinterpret_cast<QBlockSums*>(thread_buffer(1, n * np * 4));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t p = 0; p < np; ++p) {
      const QActPair& a = xq[t * np + p];
      for (int h = 0; h < 2; ++h) {
        int32_t corr = 0;
        for (int l = 8 * h; l < 8 * h + 8; ++l) corr += a.corr[l];
        cd[t * 2 * np + 2 * p + h] = QBlockSums{corr, a.d[8 * h]};
      }
    }
  }
  split(pool, n * w.rows * w.cols, q8_rows16_groups(w.rows), [&](int64_t g0, int64_t g1, int) {
    avx512::q8_rows16_rows(w, xq, cd, n, y, ys, g0, g1);
  });
}

}  // namespace

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n, float* y,
            int64_t x_stride, int64_t y_stride) {
  CHECK_EQ(w.cols % dtype_block_elems(w.dtype), 0) << dtype_name(w.dtype) << " cols " << w.cols;
  CHECK_GE(n, 1);
  CHECK(w.dtype != DType::kI32) << "matmul on I32 weights";
  if (x_stride == 0) x_stride = w.cols;
  if (y_stride == 0) y_stride = w.rows;
  if (w.layout == WeightLayout::kQ8Rows16) return matmul_q8_rows16(pool, w, x, n, y, x_stride, y_stride);
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512) return matmul_vec(kAvx512Matmul, pool, w, x, n, y, x_stride, y_stride);
  if (isa >= Isa::kAvx2) return matmul_vec(kAvx2Matmul, pool, w, x, n, y, x_stride, y_stride);
  pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1, int) {
    ref::matmul_rows(w, x, n, y, x_stride, y_stride, r0, r1);
  });
}

void dequantize_row(DType t, const void* src, float* out, int64_t n) {
  CHECK_EQ(n % dtype_block_elems(t), 0) << dtype_name(t) << " row of " << n << " elements";
  if (t != DType::kI32 && active_isa() >= Isa::kAvx512) return avx512::dequantize_row(t, src, out, n);
  if (t != DType::kI32 && active_isa() >= Isa::kAvx2) return avx2::dequantize_row(t, src, out, n);
  ref::dequantize_row(t, src, out, n);
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  ref::quantize_row(t, src, dst, n);
}

namespace {
bool use_avx512() { return active_isa() >= Isa::kAvx512; }
bool use_avx2() { return active_isa() >= Isa::kAvx2; }
}  // namespace

void rmsnorm(ThreadPool& pool, const float* x, const float* w, float* out, int64_t n_rows,
             int64_t dim, float eps) {
  const bool v = use_avx512(), v2 = use_avx2();
  auto body = [&](int64_t r0, int64_t r1, int) {
    if (v) {
      avx512::rmsnorm(x + r0 * dim, w, out + r0 * dim, r1 - r0, dim, eps);
    } else if (v2) {
      avx2::rmsnorm(x + r0 * dim, w, out + r0 * dim, r1 - r0, dim, eps);
    } else {
      ref::rmsnorm(x + r0 * dim, w, out + r0 * dim, r1 - r0, dim, eps);
    }
  };
  // One row (decode) is ~1 us of work: not worth a dispatch.
  if (n_rows == 1) return body(0, 1, 0);
  pool.parallel_for(n_rows, body);
}

// RoPE is O(n_tok * n_heads * rot_dim) with the cos/sin per (token, pair) shared across
// heads: a table per token, then plain loops (which the compiler vectorises).
void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
          const int32_t* pos, float theta, RopeLayout layout) {
  CHECK(rot_dim % 2 == 0 && rot_dim <= head_dim && rot_dim > 0) << "rot_dim " << rot_dim;
  if (active_isa() == Isa::kScalar) return ref::rope(x, n_tok, n_heads, head_dim, rot_dim, pos, theta, layout);
  const int64_t half = rot_dim / 2;
  float* inv_freq = thread_buffer(0, 3 * half);
  float* cs = inv_freq + half;
  float* sn = cs + half;
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = ref::rope_inv_freq(i, rot_dim, theta);
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<float>(pos[t]) * inv_freq[i];
      cs[i] = static_cast<float>(std::cos(angle));
      sn[i] = static_cast<float>(std::sin(angle));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      if (layout == RopeLayout::kInterleaved) {
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * cs[i] - b * sn[i];
          v[2 * i + 1] = a * sn[i] + b * cs[i];
        }
      } else {
        float* v1 = v + half;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v1[i];
          v[i] = a * cs[i] - b * sn[i];
          v1[i] = a * sn[i] + b * cs[i];
        }
      }
    }
  }
}

void softmax(float* x, int64_t n_rows, int64_t n) {
  if (use_avx512()) return avx512::softmax(x, n_rows, n);
  if (use_avx2()) return avx2::softmax(x, n_rows, n);
  ref::softmax(x, n_rows, n);
}
void silu_mul(float* gate, const float* up, int64_t n) {
  if (use_avx512()) return avx512::silu_mul(gate, up, n);
  if (use_avx2()) return avx2::silu_mul(gate, up, n);
  ref::silu_mul(gate, up, n);
}
void gelu_mul(float* gate, const float* up, int64_t n) {
  if (use_avx512()) return avx512::gelu_mul(gate, up, n);
  if (use_avx2()) return avx2::gelu_mul(gate, up, n);
  ref::gelu_mul(gate, up, n);
}
void silu(float* x, int64_t n) {
  if (use_avx512()) return avx512::silu(x, n);
  if (use_avx2()) return avx2::silu(x, n);
  ref::silu(x, n);
}
void gelu(float* x, int64_t n) {
  if (use_avx512()) return avx512::gelu(x, n);
  if (use_avx2()) return avx2::gelu(x, n);
  ref::gelu(x, n);
}
void add_inplace(float* y, const float* x, int64_t n) {
  if (use_avx512()) return avx512::add_inplace(y, x, n);
  if (use_avx2()) return avx2::add_inplace(y, x, n);
  ref::add_inplace(y, x, n);
}

void attention(ThreadPool& pool, const AttentionArgs& a) {
  CHECK(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0)
      << "heads " << a.n_heads << " kv heads " << a.n_kv_heads;
  CHECK(a.n_kv == 0 || (a.block_size > 0 && a.k_blocks && a.v_blocks)) << "attention: no KV blocks";
  if (a.n_q <= 0) return;
  if (!use_avx2() || a.head_dim > kAttnMaxHeadDim) {
    pool.parallel_for(a.n_q, [&](int64_t t0, int64_t t1, int) { ref::attention_rows(a, t0, t1); });
    return;
  }
  const auto attention_task = use_avx512() ? avx512::attention_task : avx2::attention_task;
  // Tasks: (KV split, query tile, KV head). A tile holds up to kAttnMaxRows query-head rows.
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t tile = std::max<int64_t>(1, kAttnMaxRows / group);
  const int64_t tiles = ceil_div(a.n_q, tile);
  const int64_t rows = std::min(tile, a.n_q) * group;
  const int64_t base_tasks = tiles * a.n_kv_heads;
  // Flash decoding: when there are fewer tasks than threads (decode with MQA or few KV
  // heads) and the KV range is long, KV is split into ranges run as separate tasks whose
  // partial (out, lse) are merged exactly with merge_attention. Split points fall on
  // cache-block boundaries (or anywhere inside a single contiguous block).
  constexpr int64_t kMinSplitKv = 1024;
  int64_t splits = 1;
  if (base_tasks < 2 * pool.size() && a.n_kv >= 2 * kMinSplitKv && pool.size() > 1) {
    splits = std::min<int64_t>(ceil_div(2 * pool.size(), base_tasks), a.n_kv / kMinSplitKv);
  }
  const bool one_block = a.block_size >= a.n_kv;
  const int64_t unit = one_block ? 64 : a.block_size;
  const int64_t units = ceil_div(a.n_kv, unit);
  splits = std::min(splits, units);
  if (splits <= 1) {
    // Tiny attention (e.g. decode of a dim-64 model early in the context) runs on the
    // caller: a dispatch would cost more than the work.
    const int64_t macs = 2 * a.n_q * a.n_heads * a.n_kv * a.head_dim;
    split(pool, macs, base_tasks, [&](int64_t b, int64_t e, int) {
      float* scratch = thread_buffer(1, attention_scratch_floats(rows, a.head_dim));
      for (int64_t task = b; task < e; ++task) {
        const int64_t qt = task / a.n_kv_heads, kvh = task % a.n_kv_heads;
        attention_task(a, qt * tile, std::min(a.n_q, (qt + 1) * tile), kvh, scratch);
      }
    });
    return;
  }
  const int64_t hd = a.head_dim, width = a.n_heads * hd;
  const int64_t part_out = a.n_q * width, part_lse = a.n_q * a.n_heads;
  float* parts = thread_buffer(2, splits * (part_out + part_lse));
  const int64_t kv_tok = a.n_kv_heads * hd;
  auto split_args = [&](int64_t s, AttentionArgs* sa, const float** kb, const float** vb) {
    const int64_t j0 = units * s / splits * unit;
    const int64_t j1 = std::min(a.n_kv, units * (s + 1) / splits * unit);
    *sa = a;
    sa->n_kv = j1 - j0;
    sa->kv_pos0 = a.kv_pos0 + j0;
    if (one_block) {
      kb[0] = a.k_blocks[0] + j0 * kv_tok;
      vb[0] = a.v_blocks[0] + j0 * kv_tok;
      sa->k_blocks = kb;
      sa->v_blocks = vb;
    } else {
      sa->k_blocks = a.k_blocks + j0 / a.block_size;
      sa->v_blocks = a.v_blocks + j0 / a.block_size;
    }
    sa->out = parts + s * part_out;
    sa->out_stride = width;
    sa->lse = parts + splits * part_out + s * part_lse;
  };
  pool.parallel_for(splits * base_tasks, [&](int64_t b, int64_t e, int) {
    float* scratch = thread_buffer(1, attention_scratch_floats(rows, a.head_dim));
    for (int64_t task = b; task < e; ++task) {
      const int64_t s = task / base_tasks, rest = task % base_tasks;
      const int64_t qt = rest / a.n_kv_heads, kvh = rest % a.n_kv_heads;
      AttentionArgs sa;
      const float* kb[1];
      const float* vb[1];
      split_args(s, &sa, kb, vb);
      if (sa.n_kv <= 0) continue;
      attention_task(sa, qt * tile, std::min(a.n_q, (qt + 1) * tile), kvh, scratch);
    }
  });
  // Merge splits 1.. into split 0 (rows of head_dim floats), then copy out.
  float* out0 = parts;
  float* lse0 = parts + splits * part_out;
  for (int64_t s = 1; s < splits; ++s) {
    ref::merge_attention(out0, lse0, parts + s * part_out, lse0 + s * part_lse, a.n_q * a.n_heads, hd);
  }
  const int64_t os = a.out_stride ? a.out_stride : width;
  for (int64_t t = 0; t < a.n_q; ++t) {
    std::memcpy(a.out + t * os, out0 + t * width, width * sizeof(float));
    if (a.lse) std::memcpy(a.lse + t * a.n_heads, lse0 + t * a.n_heads, a.n_heads * sizeof(float));
  }
}

void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t dim) {
  ref::merge_attention(out_a, lse_a, out_b, lse_b, n_rows, dim);
}

}  // namespace tessera::kernels
