#include "tests/kernels/test_util.h"

#include "kernels/reference.h"

namespace tessera::kernels::test {

std::vector<float> random_vec(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> make_weights(std::mt19937& rng, DType t, int64_t rows, int64_t cols,
                                  float amp) {
  const int64_t rb = dtype_row_bytes(t, cols);
  std::vector<uint8_t> w(rows * rb);
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = random_vec(rng, cols, -amp, amp);
    ref::quantize_row(t, row.data(), w.data() + r * rb, cols);
  }
  return w;
}

}  // namespace tessera::kernels::test
