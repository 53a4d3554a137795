// rmsnorm, rope, softmax, activations and add_inplace on every ISA against ref::.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/ops.h"
#include "kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::test {
namespace {

class ElementwiseTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { TESSERA_SKIP_IF_UNSUPPORTED(GetParam()); }
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what,
                  int64_t n) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], kElemAbs + kElemRel * std::fabs(want[i]))
        << what << " n " << n << " at " << i;
  }
}

const int64_t kSizes[] = {1, 7, 16, 64, 131, 4099};

TEST_P(ElementwiseTest, Activations) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(3);
  for (int64_t n : kSizes) {
    auto g = random_vec(rng, n, -12.0f, 12.0f);
    if (n > 4) g[3] = -100.0f, g[4] = 100.0f;  // saturation of exp / tanh
    const auto up = random_vec(rng, n, -3.0f, 3.0f);
    auto a = g, b = g;
    silu(a.data(), n), ref::silu(b.data(), n);
    expect_close(a, b, "silu", n);
    a = g, b = g;
    gelu(a.data(), n), ref::gelu(b.data(), n);
    expect_close(a, b, "gelu", n);
    a = g, b = g;
    silu_mul(a.data(), up.data(), n), ref::silu_mul(b.data(), up.data(), n);
    expect_close(a, b, "silu_mul", n);
    a = g, b = g;
    gelu_mul(a.data(), up.data(), n), ref::gelu_mul(b.data(), up.data(), n);
    expect_close(a, b, "gelu_mul", n);
    a = g, b = g;
    add_inplace(a.data(), up.data(), n), ref::add_inplace(b.data(), up.data(), n);
    EXPECT_EQ(a, b) << "add_inplace n " << n;
  }
}

TEST_P(ElementwiseTest, Softmax) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(4);
  for (int64_t n : kSizes) {
    for (int64_t rows : {1, 3}) {
      auto x = random_vec(rng, rows * n, -20.0f, 20.0f);
      auto y = x;
      softmax(x.data(), rows, n);
      ref::softmax(y.data(), rows, n);
      expect_close(x, y, "softmax", n);
    }
  }
  std::vector<float> big = {1000.0f, 1000.0f, -1e30f};  // no overflow, no NaN
  softmax(big.data(), 1, 3);
  EXPECT_NEAR(big[0], 0.5f, 1e-7);
  EXPECT_EQ(big[2], 0.0f);
}

TEST_P(ElementwiseTest, RmsNorm) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(5);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (int64_t dim : kSizes) {
      for (int64_t rows : {1, 5}) {
        const auto x = random_vec(rng, rows * dim, -4.0f, 4.0f);
        const auto w = random_vec(rng, dim, 0.5f, 1.5f);
        std::vector<float> a(rows * dim), b(rows * dim);
        rmsnorm(pool, x.data(), w.data(), a.data(), rows, dim, 1e-5f);
        ref::rmsnorm(x.data(), w.data(), b.data(), rows, dim, 1e-5f);
        expect_close(a, b, "rmsnorm", dim);
      }
    }
  }
}

TEST_P(ElementwiseTest, Rope) {
  ScopedIsa scoped(GetParam());
  std::mt19937 rng(6);
  struct Case {
    int64_t heads, head_dim, rot_dim;
  };
  for (const Case c : {Case{3, 64, 64}, Case{2, 80, 32}, Case{1, 6, 4}, Case{4, 128, 96}}) {
    for (RopeLayout layout : {RopeLayout::kInterleaved, RopeLayout::kHalves}) {
      const int64_t n_tok = 5;
      const std::vector<int32_t> pos = {0, 1, 17, 1000, 4095};
      auto x = random_vec(rng, n_tok * c.heads * c.head_dim, -2.0f, 2.0f);
      auto y = x;
      rope(x.data(), n_tok, c.heads, c.head_dim, c.rot_dim, pos.data(), 10000.0f, layout);
      ref::rope(y.data(), n_tok, c.heads, c.head_dim, c.rot_dim, pos.data(), 10000.0f, layout);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_NEAR(x[i], y[i], kRopeAbs * 2.0) << "head_dim " << c.head_dim << " rot " << c.rot_dim
                                                << " at " << i;
      }
    }
  }
}

TEST(RopeSemantics, PositionZeroIsIdentityAndPartialLeavesTail) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const int32_t pos0 = 0;
  auto y = x;
  rope(y.data(), 1, 1, 6, 4, &pos0, 10000.0f, RopeLayout::kHalves);
  EXPECT_EQ(x, y);
  const int32_t pos1 = 1;
  rope(y.data(), 1, 1, 6, 4, &pos1, 10000.0f, RopeLayout::kInterleaved);
  EXPECT_EQ(y[4], 5.0f);
  EXPECT_EQ(y[5], 6.0f);
  // pair 0 rotates by 1 radian
  EXPECT_NEAR(y[0], std::cos(1.0) * 1 - std::sin(1.0) * 2, 1e-6);
  EXPECT_NEAR(y[1], std::sin(1.0) * 1 + std::cos(1.0) * 2, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ElementwiseTest, testing::ValuesIn(all_isas()), IsaName());

}  // namespace
}  // namespace tessera::kernels::test
