#include "kernels/recurrent.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tessera::kernels {

void conv1d_causal(ThreadPool& pool, const float* x, int64_t x_stride, const float* w, const float* b,
                   float* state, float* out, int64_t n_tok, int64_t channels, int64_t taps) {
  if (x_stride == 0) x_stride = channels;
  const int64_t hist = taps - 1;
  // Channels are independent: each thread owns a channel range for every token, and
  // updates its part of the state at the end.
  pool.parallel_for(channels, [&](int64_t c0, int64_t c1, int) {
    const int64_t nc = c1 - c0;
    for (int64_t t = 0; t < n_tok; ++t) {
      float* o = out + t * channels + c0;
      for (int64_t c = 0; c < nc; ++c) o[c] = b[c0 + c];
      for (int64_t j = 0; j < taps; ++j) {
        const int64_t p = t - hist + j;  // input position relative to this call
        const float* src = p >= 0 ? x + p * x_stride + c0 : state + (hist + p) * channels + c0;
        const float* wj = w + c0 * taps + j;
        for (int64_t c = 0; c < nc; ++c) o[c] += wj[c * taps] * src[c];
      }
    }
    // New state: the last hist inputs of (old state ++ x).
    std::vector<float> keep(static_cast<size_t>(hist * nc));
    for (int64_t j = 0; j < hist; ++j) {
      const int64_t p = n_tok - hist + j;
      const float* src = p >= 0 ? x + p * x_stride + c0 : state + (hist + p) * channels + c0;
      std::copy_n(src, nc, keep.data() + j * nc);
    }
    for (int64_t j = 0; j < hist; ++j) std::copy_n(keep.data() + j * nc, nc, state + j * channels + c0);
  });
}

void rglru_coefficients(ThreadPool& pool, float* gate_a, float* gate_x, float* x, const float* softplus_lambda,
                        const uint8_t* reset, int64_t n_tok, int64_t channels) {
  pool.parallel_for(n_tok, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* ga = gate_a + t * channels;
      const float* gx = gate_x + t * channels;
      float* xt = x + t * channels;
      if (reset[t]) {
        for (int64_t c = 0; c < channels; ++c) {
          ga[c] = 0.0f;
          xt[c] *= 1.0f / (1.0f + std::exp(-gx[c]));
        }
        continue;
      }
      for (int64_t c = 0; c < channels; ++c) {
        const float r = 1.0f / (1.0f + std::exp(-ga[c]));
        const float i = 1.0f / (1.0f + std::exp(-gx[c]));
        const float log_a = -8.0f * r * softplus_lambda[c];
        ga[c] = std::exp(log_a);
        xt[c] *= i * std::sqrt(1.0f - std::exp(2.0f * log_a));
      }
    }
  });
}

void rglru_scan(ThreadPool& pool, const float* a, const float* u, float* h, float* out, int64_t n_tok,
                int64_t channels) {
  constexpr int64_t kMinChunk = 64;  // shorter chunks cost more in the fix-up than they save
  const int64_t n_chunks = std::min<int64_t>(pool.size(), n_tok / kMinChunk);
  if (n_chunks <= 1) {  // decode and short chunks: parallel over channels only
    pool.parallel_for(channels, [&](int64_t c0, int64_t c1, int) {
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* at = a + t * channels;
        const float* ut = u + t * channels;
        float* ot = out + t * channels;
        for (int64_t c = c0; c < c1; ++c) ot[c] = h[c] = at[c] * h[c] + ut[c];
      }
    });
    return;
  }
  auto chunk_begin = [&](int64_t k) { return n_tok * k / n_chunks; };
  // Pass 1: every chunk scanned from h = 0; prod[k] = prod of its a_t.
  std::vector<float> prod(static_cast<size_t>(n_chunks * channels), 1.0f);
  pool.parallel_for(n_chunks, [&](int64_t k0, int64_t k1, int) {
    for (int64_t k = k0; k < k1; ++k) {
      float* pk = prod.data() + k * channels;
      for (int64_t t = chunk_begin(k); t < chunk_begin(k + 1); ++t) {
        const float* at = a + t * channels;
        const float* ut = u + t * channels;
        float* ot = out + t * channels;
        const float* prev = t == chunk_begin(k) ? nullptr : out + (t - 1) * channels;
        for (int64_t c = 0; c < channels; ++c) {
          ot[c] = (prev ? at[c] * prev[c] : 0.0f) + ut[c];
          pk[c] *= at[c];
        }
      }
    }
  });
  // Pass 2 (serial over chunks, parallel-free: n_chunks x C): the state entering each chunk.
  std::vector<float> carry(static_cast<size_t>((n_chunks + 1) * channels));
  std::copy_n(h, channels, carry.data());
  for (int64_t k = 0; k < n_chunks; ++k) {
    const float* last = out + (chunk_begin(k + 1) - 1) * channels;
    for (int64_t c = 0; c < channels; ++c)
      carry[(k + 1) * channels + c] = prod[k * channels + c] * carry[k * channels + c] + last[c];
  }
  // Pass 3: fold each chunk's incoming state in: out_t += (a_s..a_t within the chunk) * carry.
  pool.parallel_for(n_chunks, [&](int64_t k0, int64_t k1, int) {
    std::vector<float> run(static_cast<size_t>(channels));
    for (int64_t k = k0; k < k1; ++k) {
      const float* ck = carry.data() + k * channels;
      std::copy_n(ck, channels, run.data());
      for (int64_t t = chunk_begin(k); t < chunk_begin(k + 1); ++t) {
        const float* at = a + t * channels;
        float* ot = out + t * channels;
        for (int64_t c = 0; c < channels; ++c) {
          run[c] *= at[c];
          ot[c] += run[c];
        }
      }
    }
  });
  std::copy_n(carry.data() + n_chunks * channels, channels, h);
}

}  // namespace tessera::kernels
