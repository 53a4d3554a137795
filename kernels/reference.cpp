#include "kernels/reference.h"

#include <glog/logging.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/fp16.h"

namespace tessera::kernels::ref {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;

double silu_d(double x) { return x / (1.0 + std::exp(-x)); }
double gelu_d(double x) {
  return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x)));
}

}  // namespace

// ---- dtype conversion ----

void dequantize_row(DType t, const void* src, float* out, int64_t n) {
  const int64_t be = dtype_block_elems(t);
  CHECK_EQ(n % be, 0) << dtype_name(t) << " row of " << n << " elements";
  switch (t) {
    case DType::kF32:
      std::memcpy(out, src, n * sizeof(float));
      return;
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = f16_to_f32(b[k].d);
        for (int j = 0; j < 32; ++j) out[k * 32 + j] = d * b[k].qs[j];
      }
      return;
    }
    case DType::kQ4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = f16_to_f32(b[k].d);
        for (int j = 0; j < 16; ++j) {
          out[k * 32 + j] = d * ((b[k].qs[j] & 0x0f) - 8);
          out[k * 32 + j + 16] = d * ((b[k].qs[j] >> 4) - 8);
        }
      }
      return;
    }
    case DType::kQ4_1: {
      const auto* b = static_cast<const BlockQ4_1*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = f16_to_f32(b[k].d);
        const float m = f16_to_f32(b[k].m);
        for (int j = 0; j < 16; ++j) {
          out[k * 32 + j] = d * (b[k].qs[j] & 0x0f) + m;
          out[k * 32 + j + 16] = d * (b[k].qs[j] >> 4) + m;
        }
      }
      return;
    }
    case DType::kI32: {
      const auto* s = static_cast<const int32_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(s[i]);
      return;
    }
  }
  LOG(FATAL) << "dequantize_row: bad dtype";
}

// The quantisers are ggml's reference ones (quantize_row_q*_ref), bit for bit.
void quantize_row(DType t, const float* x, void* dst, int64_t n) {
  const int64_t be = dtype_block_elems(t);
  CHECK_EQ(n % be, 0) << dtype_name(t) << " row of " << n << " elements";
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, x, n * sizeof(float));
      return;
    case DType::kF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(x[i]);
      return;
    }
    case DType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(x[i]);
      return;
    }
    case DType::kQ8_0: {
      auto* y = static_cast<BlockQ8_0*>(dst);
      for (int64_t k = 0; k < n / 32; ++k, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[k].d = f32_to_f16(d);
        for (int j = 0; j < 32; ++j) y[k].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      }
      return;
    }
    case DType::kQ4_0: {
      auto* y = static_cast<BlockQ4_0*>(dst);
      for (int64_t k = 0; k < n / 32; ++k, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; ++j) {
          if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[k].d = f32_to_f16(d);
        for (int j = 0; j < 16; ++j) {
          const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>(x[j] * id + 8.5f));
          const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>(x[j + 16] * id + 8.5f));
          y[k].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
      }
      return;
    }
    case DType::kQ4_1: {
      auto* y = static_cast<BlockQ4_1*>(dst);
      for (int64_t k = 0; k < n / 32; ++k, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; ++j) {
          min = std::min(min, x[j]);
          max = std::max(max, x[j]);
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[k].d = f32_to_f16(d);
        y[k].m = f32_to_f16(min);
        for (int j = 0; j < 16; ++j) {
          const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>((x[j] - min) * id + 0.5f));
          const uint8_t q1 =
              std::min<int8_t>(15, static_cast<int8_t>((x[j + 16] - min) * id + 0.5f));
          y[k].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
      }
      return;
    }
    case DType::kI32: {
      auto* d = static_cast<int32_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<int32_t>(x[i]);
      return;
    }
  }
  LOG(FATAL) << "quantize_row: bad dtype";
}

// ---- matmul ----

void quantize_act_block(const float* x, int8_t* q, float* d_out, float* s_out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));  // default rounding mode: RNE
    sum += q[j];
  }
  *d_out = f16_to_f32(f32_to_f16(d));
  *s_out = f16_to_f32(f32_to_f16(d * static_cast<float>(sum)));
}

float round_act(DType wt, float x) {
  if (wt == DType::kF16) return f16_to_f32(f32_to_f16(x));
  if (wt == DType::kBF16) return bf16_to_f32(f32_to_bf16(x));
  return x;
}

float q4_1_dot_ggml_order(const BlockQ4_1* w, const int8_t* xq, const float* xd, const float* xs,
                          int64_t nb) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float summs = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const float dd = f16_to_f32(w[b].d) * xd[b];
    summs = std::fma(f16_to_f32(w[b].m), xs[b], summs);
    const int8_t* q = xq + 32 * b;
    for (int l = 0; l < 8; ++l) {  // lane l: elements 4l .. 4l+3
      int32_t isum = 0;
      for (int e = 4 * l; e < 4 * l + 4; ++e)
        isum += (e < 16 ? (w[b].qs[e] & 0x0f) : (w[b].qs[e - 16] >> 4)) * q[e];
      acc[l] = std::fma(dd, static_cast<float>(isum), acc[l]);
    }
  }
  // hsum_float_8: (l, l+4) pairs, then (0, 2) and (1, 3), then the two; + summs last.
  float r[4];
  for (int i = 0; i < 4; ++i) r[i] = acc[i + 4] + acc[i];
  return ((r[0] + r[2]) + (r[1] + r[3])) + summs;
}

void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride,
                 int64_t y_stride, int64_t r0, int64_t r1) {
  if (x_stride == 0) x_stride = w.cols;
  if (y_stride == 0) y_stride = w.rows;
  const int64_t rs = w.row_stride ? w.row_stride : dtype_row_bytes(w.dtype, w.cols);
  const int64_t K = w.cols;
  if (dtype_is_quantized(w.dtype)) {
    const int64_t nb = K / 32;
    std::vector<int8_t> xq(n * K);
    std::vector<float> xd(n * nb), xs(n * nb);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t b = 0; b < nb; ++b)
        quantize_act_block(x + t * x_stride + 32 * b, &xq[t * K + 32 * b], &xd[t * nb + b], &xs[t * nb + b]);
    for (int64_t r = r0; r < r1; ++r) {
      const char* row = static_cast<const char*>(w.data) + r * rs;
      if (w.dtype == DType::kQ4_1) {  // llama.cpp's f32 operation order, see reference.h
        for (int64_t t = 0; t < n; ++t)
          y[t * y_stride + r] = q4_1_dot_ggml_order(reinterpret_cast<const BlockQ4_1*>(row), &xq[t * K],
                                                    &xd[t * nb], &xs[t * nb], nb);
        continue;
      }
      for (int64_t t = 0; t < n; ++t) {
        double acc = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const int8_t* qx = &xq[t * K + 32 * b];
          int32_t isum = 0;
          float dw = 0, mw = 0;
          if (w.dtype == DType::kQ8_0) {
            const auto& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
            dw = f16_to_f32(blk.d);
            for (int j = 0; j < 32; ++j) isum += blk.qs[j] * qx[j];
          } else if (w.dtype == DType::kQ4_0) {
            const auto& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
            dw = f16_to_f32(blk.d);
            for (int j = 0; j < 16; ++j)
              isum += ((blk.qs[j] & 0x0f) - 8) * qx[j] + ((blk.qs[j] >> 4) - 8) * qx[j + 16];
          } else {
            const auto& blk = reinterpret_cast<const BlockQ4_1*>(row)[b];
            dw = f16_to_f32(blk.d);
            mw = f16_to_f32(blk.m);
            for (int j = 0; j < 16; ++j) isum += (blk.qs[j] & 0x0f) * qx[j] + (blk.qs[j] >> 4) * qx[j + 16];
          }
          acc += static_cast<double>(dw) * xd[t * nb + b] * isum;
          if (w.dtype == DType::kQ4_1) acc += static_cast<double>(mw) * xs[t * nb + b];
        }
        y[t * y_stride + r] = static_cast<float>(acc);
      }
    }
    return;
  }
  std::vector<float> row(K), xr(n * K);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < K; ++k)
      xr[t * K + k] = rounds_activations(w) ? round_act(w.dtype, x[t * x_stride + k]) : x[t * x_stride + k];
  for (int64_t r = r0; r < r1; ++r) {
    dequantize_row(w.dtype, static_cast<const char*>(w.data) + r * rs, row.data(), K);
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = &xr[t * K];
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(row[k]) * xt[k];
      y[t * y_stride + r] = static_cast<float>(s);
    }
  }
}

void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t x_stride,
            int64_t y_stride) {
  matmul_rows(w, x, n, y, x_stride, y_stride, 0, w.rows);
}

// ---- elementwise ----

void rmsnorm(const float* x, const float* w, float* out, int64_t n_rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int64_t i = 0; i < dim; ++i) out[r * dim + i] = static_cast<float>(xr[i] * inv * w[i]);
  }
}

void rope(float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
          const int32_t* pos, float theta, RopeLayout layout) {
  CHECK(rot_dim % 2 == 0 && rot_dim <= head_dim) << "rot_dim " << rot_dim;
  const int64_t half = rot_dim / 2;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[t]) * rope_inv_freq(i, rot_dim, theta);
      const double c = std::cos(static_cast<double>(angle));
      const double s = std::sin(static_cast<double>(angle));
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        const int64_t i0 = layout == RopeLayout::kInterleaved ? 2 * i : i;
        const int64_t i1 = layout == RopeLayout::kInterleaved ? 2 * i + 1 : i + half;
        const double a = v[i0], b = v[i1];
        v[i0] = static_cast<float>(a * c - b * s);
        v[i1] = static_cast<float>(a * s + b * c);
      }
    }
  }
}

void softmax(float* x, int64_t n_rows, int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r) {
    float* v = x + r * n;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(v[i]));
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(v[i] - m);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(std::exp(v[i] - m) / s);
  }
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = static_cast<float>(silu_d(gate[i]) * up[i]);
}
void gelu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = static_cast<float>(gelu_d(gate[i]) * up[i]);
}
void silu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(silu_d(x[i]));
}
void gelu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(gelu_d(x[i]));
}
void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// ---- attention ----

void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1) {
  CHECK(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0)
      << "heads " << a.n_heads << " kv heads " << a.n_kv_heads;
  const int64_t hd = a.head_dim;
  const int64_t q_stride = a.q_stride ? a.q_stride : a.n_heads * hd;
  const int64_t out_stride = a.out_stride ? a.out_stride : a.n_heads * hd;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t kv_tok = a.n_kv_heads * hd;  // floats per KV token
  std::vector<double> score(a.n_kv), acc(hd);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t qp = a.q_pos0 + t;
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const float* q = a.q + t * q_stride + h * hd;
      const int64_t kvh = h / group;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < a.n_kv; ++j) {
        const int64_t kp = a.kv_pos0 + j;
        const bool visible = (!a.causal || kp <= qp) && (a.window <= 0 || kp > qp - a.window);
        if (!visible) {
          score[j] = -std::numeric_limits<double>::infinity();
          continue;
        }
        const float* k = a.k_blocks[j / a.block_size] + (j % a.block_size) * kv_tok + kvh * hd;
        double s = 0;
        for (int64_t i = 0; i < hd; ++i) s += static_cast<double>(q[i]) * k[i];
        s *= a.scale;
        if (a.softcap > 0) s = a.softcap * std::tanh(s / a.softcap);
        score[j] = s;
        m = std::max(m, s);
      }
      float* out = a.out + t * out_stride + h * hd;
      if (m == -std::numeric_limits<double>::infinity()) {  // saw no KV
        for (int64_t i = 0; i < hd; ++i) out[i] = 0.0f;
        if (a.lse) a.lse[t * a.n_heads + h] = -std::numeric_limits<float>::infinity();
        continue;
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < a.n_kv; ++j) {
        if (score[j] == -std::numeric_limits<double>::infinity()) continue;
        const double p = std::exp(score[j] - m);
        sum += p;
        const float* v = a.v_blocks[j / a.block_size] + (j % a.block_size) * kv_tok + kvh * hd;
        for (int64_t i = 0; i < hd; ++i) acc[i] += p * v[i];
      }
      for (int64_t i = 0; i < hd; ++i) out[i] = static_cast<float>(acc[i] / sum);
      if (a.lse) a.lse[t * a.n_heads + h] = static_cast<float>(m + std::log(sum));
    }
  }
}

void attention(const AttentionArgs& a) { attention_rows(a, 0, a.n_q); }

void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t dim) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const double la = lse_a[r], lb = lse_b[r];
    float* oa = out_a + r * dim;
    const float* ob = out_b + r * dim;
    if (std::isinf(lb) && lb < 0) continue;  // b saw nothing
    if (std::isinf(la) && la < 0) {          // a saw nothing
      for (int64_t i = 0; i < dim; ++i) oa[i] = ob[i];
      lse_a[r] = lse_b[r];
      continue;
    }
    const double m = std::max(la, lb);
    const double wa = std::exp(la - m), wb = std::exp(lb - m);
    const double inv = 1.0 / (wa + wb);
    for (int64_t i = 0; i < dim; ++i) oa[i] = static_cast<float>((wa * oa[i] + wb * ob[i]) * inv);
    lse_a[r] = static_cast<float>(m + std::log(wa + wb));
  }
}

}  // namespace tessera::kernels::ref
