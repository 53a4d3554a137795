// Device element-wise ops (kernels/cuda/elementwise.h, sampling.h) against
// kernels/reference.h on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/sampling.h"
#include "kernels/cuda/stream.h"
#include "kernels/fp16.h"
#include "kernels/reference.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/test_util.h"

namespace tessera::kernels::cuda::test {
namespace {

using kernels::test::random_vec;

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double abs, double rel,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = abs + rel * std::fabs(want[i]);
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol) && ++bad <= 5)
      ADD_FAILURE() << what << ": [" << i << "] = " << got[i] << ", reference " << want[i] << " (tol " << tol << ")";
  }
}

TEST(CudaElementwise, RmsNorm) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(1);
  for (int64_t dim : {8, 64, 288, 4096, 5120}) {
    const int64_t rows = 5;
    const auto x = random_vec(rng, rows * dim, -3, 3), w = random_vec(rng, dim, 0.5f, 1.5f);
    std::vector<float> want(x.size());
    ref::rmsnorm(x.data(), w.data(), want.data(), rows, dim, 1e-5f);
    DeviceBuffer dx = to_device(x), dw = to_device(w), dout(x.size() * 4);
    rmsnorm(dx.as<float>(), dw.as<float>(), dout.as<float>(), rows, dim, 1e-5f, s.get());
    s.synchronize();
    expect_close(from_device<float>(dout, x.size()), want, kReduceAbs, kReduceRel, "rmsnorm dim " + std::to_string(dim));
  }
}

TEST(CudaElementwise, Rope) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(2);
  struct Case { int64_t n_heads, head_dim, rot_dim; float theta; RopeLayout layout; };
  for (const Case& c : {Case{8, 8, 8, 10000.0f, RopeLayout::kInterleaved}, Case{32, 128, 128, 500000.0f, RopeLayout::kHalves},
                        Case{4, 64, 32, 10000.0f, RopeLayout::kHalves}, Case{2, 256, 256, 10000.0f, RopeLayout::kInterleaved}}) {
    const int64_t n_tok = 9;
    std::vector<int32_t> pos = {0, 1, 2, 17, 255, 1000, 4095, 8191, 131000};
    const auto x = random_vec(rng, n_tok * c.n_heads * c.head_dim, -2, 2);
    std::vector<float> want = x;
    ref::rope(want.data(), n_tok, c.n_heads, c.head_dim, c.rot_dim, pos.data(), c.theta, c.layout);
    const std::vector<float> inv = rope_inv_freq_table(c.rot_dim, c.theta);
    DeviceBuffer dx = to_device(x), dpos = to_device(pos), dinv = to_device(inv);
    rope(dx.as<float>(), n_tok, c.n_heads, c.head_dim, c.rot_dim, dpos.as<int32_t>(), dinv.as<float>(), c.layout, 0,
         s.get());
    s.synchronize();
    expect_close(from_device<float>(dx, x.size()), want, kRopeAbs * 2.0, 0.0,
                 "rope head_dim " + std::to_string(c.head_dim) + " rot " + std::to_string(c.rot_dim));
  }
}

TEST(CudaElementwise, RopeOnFusedQkvRowsLeavesVAlone) {
  TESSERA_SKIP_WITHOUT_CUDA();
  // Rows [q (4 heads) | k (2 heads) | v (2 heads)] x 64: one call over the 6 q+k heads
  // with the row stride equals ref::rope on q and k separately; v is untouched.
  Stream s;
  std::mt19937 rng(12);
  const int64_t n_tok = 5, hd = 64, nq = 4, nk = 2, width = (nq + 2 * nk) * hd;
  const std::vector<int32_t> pos = {3, 4, 5, 900, 901};
  const auto x = random_vec(rng, n_tok * width, -2, 2);
  std::vector<float> q(n_tok * nq * hd), k(n_tok * nk * hd);
  for (int64_t t = 0; t < n_tok; ++t) {
    std::copy_n(x.begin() + t * width, nq * hd, q.begin() + t * nq * hd);
    std::copy_n(x.begin() + t * width + nq * hd, nk * hd, k.begin() + t * nk * hd);
  }
  ref::rope(q.data(), n_tok, nq, hd, hd, pos.data(), 10000.0f, RopeLayout::kHalves);
  ref::rope(k.data(), n_tok, nk, hd, hd, pos.data(), 10000.0f, RopeLayout::kHalves);
  std::vector<float> want = x;
  for (int64_t t = 0; t < n_tok; ++t) {
    std::copy_n(q.begin() + t * nq * hd, nq * hd, want.begin() + t * width);
    std::copy_n(k.begin() + t * nk * hd, nk * hd, want.begin() + t * width + nq * hd);
  }
  const std::vector<float> inv = rope_inv_freq_table(hd, 10000.0f);
  DeviceBuffer dx = to_device(x), dpos = to_device(pos), dinv = to_device(inv);
  rope(dx.as<float>(), n_tok, nq + nk, hd, hd, dpos.as<int32_t>(), dinv.as<float>(), RopeLayout::kHalves, width, s.get());
  s.synchronize();
  expect_close(from_device<float>(dx, x.size()), want, kRopeAbs * 2.0, 0.0, "fused rope");
}

TEST(CudaElementwise, AddRmsNormEqualsAddThenNorm) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(13);
  for (int64_t dim : {64, 4096}) {
    const int64_t rows = 3;
    const auto x = random_vec(rng, rows * dim, -3, 3), d = random_vec(rng, rows * dim, -1, 1);
    const auto w = random_vec(rng, dim, 0.5f, 1.5f);
    std::vector<float> sum = x, want(x.size());
    ref::add_inplace(sum.data(), d.data(), rows * dim);
    ref::rmsnorm(sum.data(), w.data(), want.data(), rows, dim, 1e-6f);
    DeviceBuffer dx = to_device(x), dd = to_device(d), dw = to_device(w), dout(x.size() * 4);
    add_rmsnorm(dx.as<float>(), dd.as<float>(), dw.as<float>(), dout.as<float>(), rows, dim, 1e-6f, s.get());
    s.synchronize();
    EXPECT_EQ(from_device<float>(dx, x.size()), sum) << "the residual is the exact f32 sum";
    expect_close(from_device<float>(dout, x.size()), want, kReduceAbs, kReduceRel, "add_rmsnorm");
  }
}

TEST(CudaElementwise, GatedActivationOfFusedGateUpRows) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(14);
  const int64_t rows = 4, width = 1000;
  const auto gu = random_vec(rng, rows * 2 * width, -6, 6);
  for (bool use_gelu : {false, true}) {
    std::vector<float> g(rows * width), u(rows * width);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(gu.begin() + r * 2 * width, width, g.begin() + r * width);
      std::copy_n(gu.begin() + r * 2 * width + width, width, u.begin() + r * width);
    }
    if (use_gelu)
      ref::gelu_mul(g.data(), u.data(), rows * width);
    else
      ref::silu_mul(g.data(), u.data(), rows * width);
    DeviceBuffer dgu = to_device(gu), dout(g.size() * 4);
    gated_act_rows(dgu.as<float>(), rows, width, use_gelu, dout.as<float>(), s.get());
    s.synchronize();
    expect_close(from_device<float>(dout, g.size()), g, kElemAbs, kElemRel, use_gelu ? "geglu rows" : "swiglu rows");
  }
}

TEST(CudaElementwise, AppendKvWritesBothCachesAtTheSlots) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(15);
  const int64_t n = 3, cols = 24, stride = 5 * cols, k_col = 2 * cols, v_col = 4 * cols, slots_total = 8;
  const auto qkv = random_vec(rng, n * stride);
  const std::vector<int64_t> slots = {6, 1, 3};
  DeviceBuffer dq = to_device(qkv), ds = to_device(slots), dk(slots_total * cols * 4), dv(slots_total * cols * 4);
  TESSERA_CUDA_CHECK(cudaMemsetAsync(dk.get(), 0, dk.bytes(), s.get()));
  TESSERA_CUDA_CHECK(cudaMemsetAsync(dv.get(), 0, dv.bytes(), s.get()));
  append_kv(dq.as<float>(), stride, k_col, v_col, ds.as<int64_t>(), n, cols, dk.as<float>(), dv.as<float>(), s.get());
  s.synchronize();
  const auto k = from_device<float>(dk, slots_total * cols), v = from_device<float>(dv, slots_total * cols);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < cols; ++i) {
      ASSERT_EQ(k[slots[t] * cols + i], qkv[t * stride + k_col + i]);
      ASSERT_EQ(v[slots[t] * cols + i], qkv[t * stride + v_col + i]);
    }
  EXPECT_EQ(k[0], 0.0f);  // an untouched slot
}

TEST(CudaElementwise, Softmax) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(3);
  for (int64_t n : {1, 7, 512, 32000, 128256}) {
    const int64_t rows = 3;
    const auto x = random_vec(rng, rows * n, -20, 20);
    std::vector<float> want = x;
    ref::softmax(want.data(), rows, n);
    DeviceBuffer dx = to_device(x);
    softmax(dx.as<float>(), rows, n, s.get());
    s.synchronize();
    expect_close(from_device<float>(dx, x.size()), want, kReduceAbs * 1e-3, kReduceRel * 5, "softmax n " + std::to_string(n));
  }
}

TEST(CudaElementwise, Activations) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(4);
  const int64_t n = 100003;
  const auto g = random_vec(rng, n, -12, 12), u = random_vec(rng, n, -3, 3);
  struct Op { const char* name; void (*dev)(float*, const float*, int64_t, cudaStream_t); void (*ref)(float*, const float*, int64_t); };
  for (const Op& op : {Op{"silu_mul", silu_mul, ref::silu_mul}, Op{"gelu_mul", gelu_mul, ref::gelu_mul},
                       Op{"add_inplace", add_inplace, ref::add_inplace}}) {
    std::vector<float> want = g;
    op.ref(want.data(), u.data(), n);
    DeviceBuffer dg = to_device(g), du = to_device(u);
    op.dev(dg.as<float>(), du.as<float>(), n, s.get());
    s.synchronize();
    expect_close(from_device<float>(dg, g.size()), want, kElemAbs, kElemRel, op.name);
  }
  struct Op1 { const char* name; void (*dev)(float*, int64_t, cudaStream_t); void (*ref)(float*, int64_t); };
  for (const Op1& op : {Op1{"silu", silu, ref::silu}, Op1{"gelu", gelu, ref::gelu}}) {
    std::vector<float> want = g;
    op.ref(want.data(), n);
    DeviceBuffer dg = to_device(g);
    op.dev(dg.as<float>(), n, s.get());
    s.synchronize();
    expect_close(from_device<float>(dg, g.size()), want, kElemAbs, kElemRel, op.name);
  }
}

TEST(CudaElementwise, ConvertRoundsLikeTheHost) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(5);
  auto x = random_vec(rng, 4099, -70000, 70000);
  x[0] = 1e-8f, x[1] = -6e-8f, x[2] = 65520.0f, x[3] = 0.0f;  // subnormal f16, f16 overflow, zero
  DeviceBuffer dx = to_device(x), dh(x.size() * 2);
  for (DType t : {DType::kBF16, DType::kF16}) {
    convert_f32(dx.as<float>(), dh.get(), t, static_cast<int64_t>(x.size()), s.get());
    s.synchronize();
    const auto got = from_device<uint16_t>(dh, x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const uint16_t want = t == DType::kBF16 ? f32_to_bf16(x[i]) : f32_to_f16(x[i]);
      ASSERT_EQ(got[i], want) << dtype_name(t) << " of " << x[i];
    }
  }
}

TEST(CudaElementwise, EmbeddingDequantisesEveryDType) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(6);
  const int64_t rows = 50, cols = 96;
  const std::vector<int32_t> ids = {0, 49, 7, 7, 23};
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
    const auto table = kernels::test::make_weights(rng, t, rows, cols);
    const int64_t rb = dtype_row_bytes(t, cols);
    std::vector<float> want(ids.size() * cols);
    for (size_t i = 0; i < ids.size(); ++i) {
      ref::dequantize_row(t, table.data() + ids[i] * rb, want.data() + i * cols, cols);
      for (int64_t j = 0; j < cols; ++j) want[i * cols + j] *= 2.5f;
    }
    DeviceBuffer dt = to_device(table), di = to_device(ids), dout(want.size() * 4);
    embedding(t, dt.get(), rows, cols, rb, di.as<int32_t>(), static_cast<int64_t>(ids.size()), 2.5f, dout.as<float>(), s.get());
    s.synchronize();
    EXPECT_EQ(from_device<float>(dout, want.size()), want) << dtype_name(t);
  }
}

TEST(CudaElementwise, GatherAndScatterRows) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(7);
  const int64_t cols = 40;
  const auto src = random_vec(rng, 6 * cols);
  const std::vector<int32_t> rows = {5, 0, 3};
  const std::vector<int64_t> slots = {9, 2, 4, 0, 7, 1};
  DeviceBuffer dsrc = to_device(src), drows = to_device(rows), dslots = to_device(slots);
  DeviceBuffer dg(rows.size() * cols * 4), ds(10 * cols * 4);
  gather_rows(dsrc.as<float>(), drows.as<int32_t>(), 3, cols, dg.as<float>(), s.get());
  TESSERA_CUDA_CHECK(cudaMemsetAsync(ds.get(), 0, ds.bytes(), s.get()));
  scatter_rows(dsrc.as<float>(), dslots.as<int64_t>(), 6, cols, ds.as<float>(), s.get());
  s.synchronize();
  const auto g = from_device<float>(dg, rows.size() * cols), sc = from_device<float>(ds, 10 * cols);
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t j = 0; j < cols; ++j) ASSERT_EQ(g[i * cols + j], src[rows[i] * cols + j]);
  for (size_t i = 0; i < slots.size(); ++i)
    for (int64_t j = 0; j < cols; ++j) ASSERT_EQ(sc[slots[i] * cols + j], src[i * cols + j]);
}

TEST(CudaSampling, ArgmaxTakesTheFirstOfEqualMaxima) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(8);
  const int64_t n = 128256, rows = 4;
  auto x = random_vec(rng, rows * n, -5, 5);
  x[0 * n + 77777] = 9.0f;                              // a plain maximum
  x[1 * n + 12] = 9.0f, x[1 * n + 100000] = 9.0f;        // a tie: the lower index wins
  x[2 * n + n - 1] = 9.0f;                               // the last column
  x[3 * n + 5] = std::nanf(""), x[3 * n + 6] = 8.0f;     // NaN never wins
  DeviceBuffer dx = to_device(x), dout(rows * 4);
  argmax_rows(dx.as<float>(), rows, n, dout.as<int32_t>(), s.get());
  s.synchronize();
  const auto got = from_device<int32_t>(dout, rows);
  EXPECT_EQ(got, (std::vector<int32_t>{77777, 12, static_cast<int32_t>(n - 1), 6}));
}

TEST(CudaSampling, TopKEqualsPartialSort) {
  TESSERA_SKIP_WITHOUT_CUDA();
  Stream s;
  std::mt19937 rng(16);
  const int64_t n = 32000, rows = 3, k = 50;
  auto x = random_vec(rng, rows * n, -8, 8);
  for (int64_t i = 0; i < 10; ++i) x[1 * n + 100 + i] = 9.5f;  // ties: taken in index order
  x[2 * n + 7] = std::nanf("");                                // NaN never taken
  DeviceBuffer dx = to_device(x), dv(rows * k * 4), di(rows * k * 4);
  topk_rows(dx.as<float>(), rows, n, k, dv.as<float>(), di.as<int32_t>(), s.get());
  s.synchronize();
  const auto vals = from_device<float>(dv, rows * k);
  const auto idx = from_device<int32_t>(di, rows * k);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> order;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(x[r * n + i])) order.push_back(static_cast<int32_t>(i));
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return x[r * n + a] > x[r * n + b] || (x[r * n + a] == x[r * n + b] && a < b);
    });
    for (int64_t j = 0; j < k; ++j) {
      ASSERT_EQ(idx[r * k + j], order[j]) << "row " << r << " rank " << j;
      ASSERT_EQ(vals[r * k + j], x[r * n + order[j]]);
    }
  }
  // All-NaN row: padded.
  std::vector<float> nan_row(16, std::nanf(""));
  DeviceBuffer dn = to_device(nan_row), dv2(4 * 4), di2(4 * 4);
  topk_rows(dn.as<float>(), 1, 16, 4, dv2.as<float>(), di2.as<int32_t>(), s.get());
  s.synchronize();
  EXPECT_EQ(from_device<int32_t>(di2, 4), (std::vector<int32_t>{-1, -1, -1, -1}));
}

}  // namespace
}  // namespace tessera::kernels::cuda::test
