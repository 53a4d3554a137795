// Plain references of kernels/recurrent.h: one token at a time, sums in double.
#include <cmath>
#include <vector>

#include "kernels/reference.h"

namespace tessera::kernels::ref {

void conv1d_causal(const float* x, int64_t x_stride, const float* w, const float* b, float* state, float* out,
                   int64_t n_tok, int64_t channels, int64_t taps) {
  if (x_stride == 0) x_stride = channels;
  const int64_t hist = taps - 1;
  // window [taps][C]: the inputs x(t - taps + 1) .. x(t), oldest first.
  std::vector<float> window(static_cast<size_t>(taps * channels));
  for (int64_t j = 0; j < hist; ++j)
    for (int64_t c = 0; c < channels; ++c) window[j * channels + c] = state[j * channels + c];
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t c = 0; c < channels; ++c) window[hist * channels + c] = x[t * x_stride + c];
    for (int64_t c = 0; c < channels; ++c) {
      double s = b[c];
      for (int64_t j = 0; j < taps; ++j) s += static_cast<double>(w[c * taps + j]) * window[j * channels + c];
      out[t * channels + c] = static_cast<float>(s);
    }
    for (int64_t j = 0; j < hist; ++j)
      for (int64_t c = 0; c < channels; ++c) window[j * channels + c] = window[(j + 1) * channels + c];
  }
  for (int64_t j = 0; j < hist; ++j)
    for (int64_t c = 0; c < channels; ++c) state[j * channels + c] = window[j * channels + c];
}

void rglru_coefficients(float* gate_a, float* gate_x, float* x, const float* softplus_lambda, const uint8_t* reset,
                        int64_t n_tok, int64_t channels) {
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t k = t * channels + c;
      const double r = 1.0 / (1.0 + std::exp(-static_cast<double>(gate_a[k])));
      const double i = 1.0 / (1.0 + std::exp(-static_cast<double>(gate_x[k])));
      const double log_a = -8.0 * r * softplus_lambda[c];
      const double mult = reset[t] ? 1.0 : std::sqrt(1.0 - std::exp(2.0 * log_a));
      gate_a[k] = reset[t] ? 0.0f : static_cast<float>(std::exp(log_a));
      x[k] = static_cast<float>(x[k] * i * mult);
    }
  }
}

void rglru_scan(const float* a, const float* u, float* h, float* out, int64_t n_tok, int64_t channels) {
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t c = 0; c < channels; ++c) {
      h[c] = static_cast<float>(static_cast<double>(a[t * channels + c]) * h[c] + u[t * channels + c]);
      out[t * channels + c] = h[c];
    }
}

}  // namespace tessera::kernels::ref
