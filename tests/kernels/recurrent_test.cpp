// The linear-recurrent ops (kernels/recurrent.h) against their token-by-token double
// references, for 1 and 3 threads (the chunked scan runs with several chunks), odd
// sizes, state carried across calls, and a split call equal to one call.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/recurrent.h"
#include "kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::test {
namespace {

// f32 recurrences in a different order than the double reference: the error of a
// scan grows with its length (each step rounds once), bounded here for |u| <= 1.
constexpr double kScanAbs = 2e-5;
constexpr double kConvAbs = 2e-6;

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << what << " at " << i;
}

struct Shape {
  int64_t n_tok, channels;
};
const Shape kShapes[] = {{1, 5}, {3, 17}, {64, 8}, {257, 33}, {1000, 96}};

class RecurrentOps : public testing::TestWithParam<int> {};  // thread count

TEST_P(RecurrentOps, Conv1dMatchesReferenceWithCarriedState) {
  ThreadPool pool(GetParam());
  std::mt19937 rng(11);
  for (const Shape& s : kShapes) {
    for (int64_t taps : {1, 2, 4}) {
      const int64_t c = s.channels, stride = c + 3;  // strided input rows
      const auto x = random_vec(rng, s.n_tok * stride);
      const auto w = random_vec(rng, c * taps), b = random_vec(rng, c);
      auto state0 = random_vec(rng, (taps - 1) * c);
      auto st_ref = state0, st = state0;
      std::vector<float> out_ref(s.n_tok * c), out(s.n_tok * c);
      ref::conv1d_causal(x.data(), stride, w.data(), b.data(), st_ref.data(), out_ref.data(), s.n_tok, c, taps);
      conv1d_causal(pool, x.data(), stride, w.data(), b.data(), st.data(), out.data(), s.n_tok, c, taps);
      expect_near_all(out, out_ref, kConvAbs, "conv out");
      expect_near_all(st, st_ref, 0.0, "conv state");
      // Two calls (the state carries the history) equal one.
      const int64_t t1 = s.n_tok / 2;
      st = state0;
      std::vector<float> split(s.n_tok * c);
      conv1d_causal(pool, x.data(), stride, w.data(), b.data(), st.data(), split.data(), t1, c, taps);
      conv1d_causal(pool, x.data() + t1 * stride, stride, w.data(), b.data(), st.data(), split.data() + t1 * c,
                    s.n_tok - t1, c, taps);
      expect_near_all(split, out_ref, kConvAbs, "conv split");
      expect_near_all(st, st_ref, 0.0, "conv split state");
    }
  }
}

TEST_P(RecurrentOps, ScanMatchesReference) {
  ThreadPool pool(GetParam());
  std::mt19937 rng(12);
  for (const Shape& s : kShapes) {
    const int64_t c = s.channels;
    const auto a = random_vec(rng, s.n_tok * c, 0.5f, 1.0f);  // slow decays, as trained models have
    const auto u = random_vec(rng, s.n_tok * c);
    auto h0 = random_vec(rng, c);
    auto h_ref = h0, h = h0;
    std::vector<float> out_ref(s.n_tok * c), out(s.n_tok * c);
    ref::rglru_scan(a.data(), u.data(), h_ref.data(), out_ref.data(), s.n_tok, c);
    rglru_scan(pool, a.data(), u.data(), h.data(), out.data(), s.n_tok, c);
    expect_near_all(out, out_ref, kScanAbs, "scan out");
    expect_near_all(h, h_ref, kScanAbs, "scan state");
  }
}

TEST_P(RecurrentOps, CoefficientsMatchReference) {
  ThreadPool pool(GetParam());
  std::mt19937 rng(13);
  for (const Shape& s : kShapes) {
    const int64_t c = s.channels;
    auto ga = random_vec(rng, s.n_tok * c, -6.0f, 6.0f), gx = random_vec(rng, s.n_tok * c, -6.0f, 6.0f);
    auto x = random_vec(rng, s.n_tok * c);
    const auto sp = random_vec(rng, c, 0.001f, 3.0f);
    std::vector<uint8_t> reset(s.n_tok, 0);
    reset[0] = 1;
    auto ga_ref = ga, gx_ref = gx, x_ref = x;
    ref::rglru_coefficients(ga_ref.data(), gx_ref.data(), x_ref.data(), sp.data(), reset.data(), s.n_tok, c);
    rglru_coefficients(pool, ga.data(), gx.data(), x.data(), sp.data(), reset.data(), s.n_tok, c);
    expect_near_all(ga, ga_ref, kElemAbs + 1e-6, "a");
    expect_near_all(x, x_ref, 1e-5, "u");  // sqrt(1 - a^2) near a = 1 loses digits in f32
    for (int64_t i = 0; i < c; ++i) ASSERT_EQ(ga[i], 0.0f) << "reset row keeps no memory";
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, RecurrentOps, testing::Values(1, 3));

}  // namespace
}  // namespace tessera::kernels::test
